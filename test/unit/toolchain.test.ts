import * as k8s from '@kubernetes/client-node';

describe('toolchain', () => {
  it('runs on Node >= 22.19 and loads the ESM-only Kubernetes client', () => {
    const [major, minor] = process.versions.node.split('.').map(Number);
    expect(major! > 22 || (major === 22 && minor! >= 19)).toBe(true);
    expect(typeof k8s.KubeConfig).toBe('function');
  });
});
