export { type MysqlSourceConfig, mysqlSourceConfig } from './config.ts';
export { preflightMysqlSource } from './preflight.ts';
export { type BatchOptions, MysqlSource } from './source.ts';
