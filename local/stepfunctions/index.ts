/** The local Step Functions: the engine (LocalStepFunctions) and its HTTP endpoint for @aws-sdk/client-sfn. */
export * from './engine';
export { startLocalSfnEndpoint, type LocalSfnEndpoint, type LocalSfnEndpointOptions } from './endpoint';
