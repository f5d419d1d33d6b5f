/**
 * Importing Parlant data (its JSON-file stores or its MongoDB database) into Otto: read with
 * `readParlant`, import with `importParlant`. Library code: it never prompts or exits.
 */
export { importParlant, type ImportCounts, type NotMapped, type ParlantImportOptions, type ParlantImportReport } from './import.ts';
export { parlantModel, parseToolId, type ParlantModel } from './model.ts';
export { readParlant, readParlantFolder, readParlantMongo, type ParlantData, type RawDoc } from './source.ts';
