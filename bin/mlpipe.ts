/**
 * CDK app entry (cdk.json `app`): one MlPipeStack, configured by `mlpipe:*` context. The account and
 * region come from the CLI's environment when there is one; without credentials the stack synthesizes
 * environment-agnostic, so `cdk synth` works offline on a fresh clone.
 */
import { App } from 'aws-cdk-lib';
import { MlPipeStack } from '../lib/mlpipe-stack';

const app = new App();
const stackName = (app.node.tryGetContext('mlpipe:stackName') as string | undefined) ?? 'MlPipeStack';
new MlPipeStack(app, stackName, {
  env:
    process.env.CDK_DEFAULT_ACCOUNT !== undefined
      ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
      : undefined,
});
app.synth();
