/**
 * Runs the Express service until SIGINT/SIGTERM.
 *   npx tsx examples/express/main.ts                     (in-memory SQLite)
 *   DATABASE_URL=postgres://... PORT=3000 npx tsx examples/express/main.ts
 * Then: curl -X PUT localhost:3000/accounts/a -H 'content-type: application/json' -d '{"balance":100}'
 *       curl -X PUT localhost:3000/accounts/b -H 'content-type: application/json' -d '{"balance":0}'
 *       curl -X POST localhost:3000/transfers -H 'content-type: application/json' -d '{"from":"a","to":"b","amount":30}'
 */
import { startExpressApp } from './app.js';

const service = await startExpressApp({ databaseUrl: process.env.DATABASE_URL, port: Number(process.env.PORT ?? 3000) });
console.log(`express service on ${service.url}: PUT /accounts/:id {"balance":100}, POST /transfers {"from","to","amount"}, GET /accounts/:id`);
const stop = async (): Promise<void> => {
  await service.close();
  console.log(`relayed ${service.broker.messages('transfer-made').length} event(s); stopped`);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
