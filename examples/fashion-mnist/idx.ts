/**
 * The example's IDX reader/writer. One implementation only: it lives in functions/shared/idx.ts (pure,
 * dependency-free) so the EvaluateModel handler reads the same t10k files the trainer was staged with.
 */
export { decodeIdx, encodeIdx, idxFileSize, idxHeaderSize, IdxFormatError, IDX_UBYTE } from '../../functions/shared/idx';
export type { IdxArray } from '../../functions/shared/idx';
