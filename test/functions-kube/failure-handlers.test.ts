/**
 * The failure handlers' tests against a local Kubernetes API and S3 (failures, failures-create, failure-reasons and api-outage
 * .cases.ts): one Jest process for them, as a file's own process cost 1.5-2 s of setup (loading the
 * handlers and the local servers' modules). Each *.cases.ts is one describe block with its own servers
 * (startTestEnv), so each stands alone and they run in any order.
 */
import './failures.cases';
import './failures-create.cases';
import './failure-reasons.cases';
import './api-outage.cases';
