/** The MySQL/MariaDB connector as the registry sees it: source and target. */
export { target } from './sink/index.ts';
export { source } from './source/index.ts';
