/** Drops the tables a test made on the Postgres at `databaseUrl`; nothing for an in-memory database (`undefined`). */
export async function dropPostgresTables(databaseUrl: string | undefined, tables: readonly string[]): Promise<void> {
  if (databaseUrl === undefined) return;
  const { default: knex } = await import('knex');
  const db = knex({ client: 'pg', connection: databaseUrl });
  try {
    for (const t of tables) await db.schema.dropTableIfExists(t);
  } finally {
    await db.destroy();
  }
}
