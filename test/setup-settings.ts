/**
 * Jest setupFiles: handler modules read their settings once, when they load, and most suites import
 * handlers before they start their local servers. This gives every suite a plausible environment to load
 * with (only where a variable is unset); a suite that points the handlers elsewhere sets process.env and
 * calls reloadSettings() (functions/shared/settings.ts), as test/functions-kube/env.ts does. A Lambda gets
 * no such defaults: test/cdk/settings.cases.ts (run by bundles.test.ts) loads every bundle with exactly its template environment.
 */
const TEST_ENV: Record<string, string> = {
  ARTIFACT_BUCKET: 'mlpipe-test',
  KUBECONFIG: '/nonexistent/mlpipe-test-kubeconfig',
  NOTIFICATION_TOPIC_ARN: 'arn:aws:sns:us-east-1:000000000000:mlpipe-test',
  APPROVAL_BASE_URL: 'http://127.0.0.1:9',
  APPROVAL_SECRET: 'test-approval-secret-0123456789abcdef',
  TASK_MEMORY_MB: '{"*":256,"EvaluateModel":1024}',
  // Handler suites run their fixture servers without tokens; the auth suites (and the e2e run, from the template) turn it on.
  ENDPOINT_AUTH: 'false',
};

for (const [name, value] of Object.entries(TEST_ENV)) process.env[name] ??= value;

// Suites also call shared modules directly (the registry, the S3 client, Kubernetes access), not only
// through a handler: load what those read, as a handler would at init.
/* eslint-disable @typescript-eslint/no-require-imports */
const { KUBE, REGISTRY, APPROVAL_KEY, kubeCheck, approvalKeyCheck } = require('../functions/shared/function-settings') as typeof import('../functions/shared/function-settings');
const S = require('../functions/shared/settings') as typeof import('../functions/shared/settings');
S.loadSettings(S.defineSettings({ ...KUBE, ...REGISTRY, ...APPROVAL_KEY, ...S.group(S.NOTIFICATION_TOPIC_ARN) }, kubeCheck, approvalKeyCheck));
