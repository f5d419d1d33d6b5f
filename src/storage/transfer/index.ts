export { defaultCollections, TRANSFERS } from './collections.ts';
export { transfer, transferKey, type CollectionTransfer, type TransferOptions, type TransferProgress, type TransferSummary } from './transfer.ts';
export { canonicalJson, verify, type CollectionComparison, type VerifyOptions, type VerifyReport } from './verify.ts';
