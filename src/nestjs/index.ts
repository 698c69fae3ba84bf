/**
 * txkit in NestJS applications: {@link TxkitModule} provides a transaction
 * context and its {@link TransactionHost}; {@link Transactional} runs a
 * method as one unit of work on it, with txkit's propagation, retry, hooks
 * and timeouts. Nothing here imports NestJS: the module is data NestJS reads,
 * and the decorator also works outside NestJS (standard decorators included).
 *
 * @module txkit/nestjs
 */
export { TransactionHost } from './transaction-host.js';
export { Transactional } from './transactional.js';
export type { MethodDecoratorBoth, TransactionalOptions } from './transactional.js';
export { TxkitModule, transactionContextToken, transactionHostToken } from './txkit-module.js';
export type { InjectionTokenLike, TxkitDynamicModule, TxkitModuleAsyncOptions, TxkitModuleOptions, TxkitProvider } from './txkit-module.js';
