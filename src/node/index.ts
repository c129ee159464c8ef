/** Node-only helpers (file system). The main entry 'bitopt' stays free of Node imports. */
export { loadStateDictFile, saveStateDictFile } from './checkpoint.js';
