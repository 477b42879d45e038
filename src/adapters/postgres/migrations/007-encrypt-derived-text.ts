import type { Knex } from 'knex';

/**
 * todos.description, thoughts.summary and ideas.text are derived from the notes (issue 20, item
 * 10): they become sensitive, so their tables get the `encrypted` mark captures has. Rows written
 * before stay plaintext (marked false) and are read as such until `npm run reencrypt` encrypts
 * them; the migration holds no key, so it cannot.
 */
const TABLES = ['todos', 'thoughts', 'ideas'] as const;

export async function up(knex: Knex): Promise<void> {
  for (const table of TABLES) await knex.schema.alterTable(table, (t) => t.boolean('encrypted').notNullable().defaultTo(false));
}

export async function down(knex: Knex): Promise<void> {
  for (const table of TABLES) await knex.schema.alterTable(table, (t) => t.dropColumn('encrypted'));
}
