/**
 * Starter Lambda (SQS event source with ReportBatchItemFailures): ECR pushes, new training data in S3 and
 * schedules become pipeline runs, exactly one per trigger. The logic is in shared/starter.ts.
 */
import { createStarter, loadStarterSettings } from './shared/starter';

export const handler = createStarter(loadStarterSettings(process.env));
