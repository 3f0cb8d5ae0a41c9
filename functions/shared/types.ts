/**
 * The shapes that flow through statemachine/pipeline.asl.json, as TypeScript types derived from their zod
 * schemas in state.ts (one shape, one place). Every Task handler except PrepareRun and RequestApproval
 * receives the whole PipelineState (`$`) and returns the slice that the state's ResultPath names. Keep
 * the schemas in step with the ASL file and docs/architecture.md.
 */
import type { z } from 'zod';
import type {
  ApprovalDecisionSchema,
  CanaryEvidenceSchema,
  CanarySchema,
  CanaryStepSchema,
  CleanupSchema,
  EvaluationSchema,
  PipelineErrorSchema,
  PipelineStateSchema,
  PrepareRunInputSchema,
  RequestApprovalInputSchema,
  RunRequestSchema,
  RunSchema,
  StageNameSchema,
  StageSchema,
  TrainingSchema,
} from './state';

export type Stage = z.infer<typeof StageNameSchema>;
/** What a run was asked to do: the execution input, validated by PrepareRun. */
export type RunRequest = z.infer<typeof RunRequestSchema>;
/** `$.run`: the validated request plus everything derived from it once, in PrepareRun. */
export type RunContext = z.infer<typeof RunSchema>;
/** `$.training` (SubmitTraining, CheckTraining, AwaitTraining). */
export type TrainingResult = z.infer<typeof TrainingSchema>;
/** `$.staging` and `$.production`. */
export type StageResult = z.infer<typeof StageSchema>;
/** `$.canary` (ShiftCanaryTraffic, AnalyzeCanary, AbortCanary). */
export type CanaryState = z.infer<typeof CanarySchema>;
export type CanaryStep = z.infer<typeof CanaryStepSchema>;
export type CanaryEvidence = z.infer<typeof CanaryEvidenceSchema>;
/** `$.evaluation` (EvaluateModel); also written to models/<model>/<version>/evaluation.json. */
export type EvaluationResult = z.infer<typeof EvaluationSchema>;
/** `$.approval`: the output given to SendTaskSuccess by the approval endpoint or `mlpipe approve`. */
export type ApprovalDecision = z.infer<typeof ApprovalDecisionSchema>;
/** `$.cleanup` (Cleanup, CleanupStaging). */
export type CleanupResult = z.infer<typeof CleanupSchema>;
/** `$.error`, put there by every Catch or by a Pass state on gate failure / rejection / timeout. */
export type PipelineError = z.infer<typeof PipelineErrorSchema>;
export type PipelineState = z.infer<typeof PipelineStateSchema>;
/** PrepareRun's input, built by the Parameters block of the Prepare state. */
export type PrepareRunInput = z.infer<typeof PrepareRunInputSchema>;
/** RequestApproval's input (lambda:invoke.waitForTaskToken Payload). */
export type RequestApprovalInput = z.infer<typeof RequestApprovalInputSchema>;
