/**
 * Starter Lambda (SQS event source with ReportBatchItemFailures): ECR pushes, new training data in S3 and
 * schedules become pipeline runs, exactly one per trigger. The logic is in shared/starter.ts.
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { loadSettings } from './shared/settings';
import { createStarter, starterSettings } from './shared/starter';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
export const handler = createStarter(starterSettings(loadSettings(FUNCTION_SETTINGS.StartPipeline)));
