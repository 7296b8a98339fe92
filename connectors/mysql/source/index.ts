export { type MysqlSourceConfig, mysqlSourceConfig } from './config.ts';
export { preflightMysqlSource } from './preflight.ts';
export { MysqlSource } from './source.ts';
