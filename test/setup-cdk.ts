/**
 * Jest setupFiles: the CDK apps the tests synthesize (test/cdk, bundles, and the local run's `bin/mlpipe.ts`
 * child, which inherits this environment) skip aws-cdk-lib's built-in CloudFormation template validation.
 * Why: that plugin starts a WebAssembly rules engine in every process that synthesizes (~9 s of CPU, then
 * ~2 s per synth; measured: test/cdk/stack.test.ts 28.5 s -> 12.5 s CPU), and under Jest it can never fail a
 * test: its findings are downgraded to warnings unless the app opts into strict validation, and the
 * default stack's report is empty. What it checks is still checked where it matters, by `cdk synth`
 * and `cdk deploy`. `CDK_VALIDATION=false` is the documented switch (aws-cdk-lib AppProps
 * builtinCloudFormationValidation); set CDK_VALIDATION=true to run it here too.
 */
process.env.CDK_VALIDATION ??= 'false';
