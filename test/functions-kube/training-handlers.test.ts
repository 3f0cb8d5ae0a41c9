/**
 * The training handlers' tests against a local Kubernetes API and S3 (training, check-training, training-scoped, training-resume and placement
 * .cases.ts): one Jest process for them, as a file's own process cost 1.5-2 s of setup (loading the
 * handlers and the local servers' modules). Each *.cases.ts is one describe block with its own servers
 * (startTestEnv), so each stands alone and they run in any order.
 */
import './training.cases';
import './check-training.cases';
import './training-scoped.cases';
import './training-resume.cases';
import './placement.cases';
