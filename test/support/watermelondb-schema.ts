/**
 * The WatermelonDB schema of an app syncing with this server (docs/watermelondb.md shows this
 * file): the server's tables and columns under the same snake_case names, optional exactly where
 * the server allows null, plus `created_at` and the optional, read-only `last_modified_at`.
 * `_status` and `_changed` are WatermelonDB's own and are not declared.
 */
import { appSchema, tableSchema } from '@nozbe/watermelondb';

export const capturesTable = tableSchema({
  name: 'captures',
  columns: [
    { name: 'type', type: 'string' },
    { name: 'raw_content', type: 'string' },
    { name: 'normalized_text', type: 'string', isOptional: true },
    { name: 'state', type: 'string' },
    { name: 'tags', type: 'string' },
    { name: 'project_id', type: 'string', isOptional: true, isIndexed: true },
    { name: 'duration_ms', type: 'number', isOptional: true },
    { name: 'created_at', type: 'number' },
    { name: 'last_modified_at', type: 'number', isOptional: true },
  ],
});
export const todosTable = tableSchema({
  name: 'todos',
  columns: [
    { name: 'thought_id', type: 'string', isOptional: true, isIndexed: true },
    { name: 'description', type: 'string' },
    { name: 'state', type: 'string' },
    { name: 'priority', type: 'string' },
    { name: 'deadline', type: 'number', isOptional: true },
    { name: 'completed_at', type: 'number', isOptional: true },
    { name: 'project_id', type: 'string', isOptional: true, isIndexed: true },
    { name: 'created_at', type: 'number' },
    { name: 'last_modified_at', type: 'number', isOptional: true },
  ],
});
export const thoughtsTable = tableSchema({
  name: 'thoughts',
  columns: [
    { name: 'capture_id', type: 'string', isIndexed: true },
    { name: 'summary', type: 'string' },
    { name: 'created_at', type: 'number' },
    { name: 'last_modified_at', type: 'number', isOptional: true },
  ],
});
export const ideasTable = tableSchema({
  name: 'ideas',
  columns: [
    { name: 'thought_id', type: 'string', isOptional: true, isIndexed: true },
    { name: 'text', type: 'string' },
    { name: 'created_at', type: 'number' },
    { name: 'last_modified_at', type: 'number', isOptional: true },
  ],
});
export const projectsTable = tableSchema({
  name: 'projects',
  columns: [
    { name: 'name', type: 'string' },
    { name: 'color', type: 'string', isOptional: true },
    { name: 'archived', type: 'boolean' },
    { name: 'created_at', type: 'number' },
    { name: 'last_modified_at', type: 'number', isOptional: true },
  ],
});

export const schema = appSchema({ version: 1, tables: [capturesTable, todosTable, thoughtsTable, ideasTable, projectsTable] });
