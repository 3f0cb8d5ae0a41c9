/**
 * The CDK tests of the synthesized stack, in one Jest test file: each file pays ~8 s to load aws-cdk-lib
 * and the stack's constructs into its own module registry, and most of them synthesize the same few
 * stacks, which helpers.ts `synthStack` then shares (template frozen). Each *.cases.ts keeps one
 * concern; run one alone with `npx jest test/cdk/stack.test.ts -t '<its describe name>'`.
 * Measured (9 CDK files, CPU user+sys): see the commit that introduced this file.
 */
import './pipeline.cases';
import './least-privilege.cases';
import './hyperparameters-iam.cases';
import './retry-link-iam.cases';
import './private-staging.cases';
import './settings-props.cases';
import './event-pattern.cases';
import './validation.cases';
import './nag.cases';
import './serving-monitor.cases';
import './endpoint-auth.cases';
// The local run's reading of the same default template (DESIGN decision 13): it shares the synthesized stack.
import '../asl/local-mapping.cases';
