// Dev check (not committed): a "real" cluster stand-in started apart from npm start, with the namespaces created
// by its admin, and a kubeconfig whose token is limited to the two namespaces, as the EKS access entry is.
import { startLocalKube } from './local/kube';
import { LOCAL_IMAGES } from './local/pipeline';
import { LOCAL_AWS_ENV } from './local/s3';
import { ensureNamespaces } from './local/namespaces';
import { writeFileSync } from 'node:fs';
async function main() {
  const s3Port = Number(process.argv[2]);
  const kube = await startLocalKube({ images: LOCAL_IMAGES, stateDir: '/tmp/kcheck/kube', env: { ...LOCAL_AWS_ENV, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${s3Port}` } });
  await ensureNamespaces(kube.kubeconfigPath, ['mlpipe-staging', 'mlpipe-production'], ['mlpipe-trainer', 'mlpipe-server']);
  const scoped = kube.mintScopedKubeconfig(['mlpipe-staging', 'mlpipe-production'], { file: '/tmp/kcheck/scoped.yaml' });
  writeFileSync('/tmp/kcheck/ready', scoped.kubeconfigPath);
  console.log('cluster ready', kube.url, scoped.kubeconfigPath);
  process.on('SIGTERM', () => void kube.stop().then(() => process.exit(0)));
}
void main();
