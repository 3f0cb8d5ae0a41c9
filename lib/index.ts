/** Public API of the mlpipe CDK library. */
export { MlPipeline, type MlPipelineProps } from './mlpipe-pipeline';
export { MlPipeStack, type MlPipeStackProps } from './mlpipe-stack';
export { propsFromContext, CONTEXT_KEYS, CONTEXT_PREFIX } from './context';
export { DEFINITION_SUBSTITUTION_NAMES, FUNCTION_SPECS } from './constructs/pipeline-functions';
export { ecrPushPattern, dataPattern, scheduleMessage } from './constructs/triggers';
export type { PlacementProps } from '../functions/shared/placement';
export type { Toleration } from '../functions/shared/k8s-names';
