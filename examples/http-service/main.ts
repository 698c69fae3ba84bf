/**
 * Runs the order service until SIGINT/SIGTERM.
 *   npx tsx examples/http-service/main.ts                     (in-memory SQLite)
 *   DATABASE_URL=postgres://... PORT=3000 npx tsx examples/http-service/main.ts
 */
import { startOrderService } from './order-service.js';

const service = await startOrderService({ databaseUrl: process.env.DATABASE_URL, port: Number(process.env.PORT ?? 3000) });
console.log(`order service on ${service.url}: POST /orders {"id":"o-1","total":42}, GET /orders/o-1`);
const stop = async (): Promise<void> => {
  await service.close();
  console.log(`relayed ${service.broker.messages('order-created').length} event(s); stopped`);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
