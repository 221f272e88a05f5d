// The outbox: every message a person sends is kept in IndexedDB with its
// client id until the platform acknowledged it, and sent again, with the
// same id, after a reload, a lost connection or a DC fire. The server
// keeps a message's client id forever, so a message sent twice is stored
// once. Messages of one conversation leave in the order they were written.
import { openDB, type IDBPDatabase } from 'idb';
import { signal } from '@preact/signals';

export type Pending = {
  id: string;
  user: string;
  conversation_id: string;
  text: string;
  reply_to?: number;
  created_at: number;
  /** The last error, when a send was refused for good. */
  failed?: string;
};

let dbp: Promise<IDBPDatabase> | null = null;

function db() {
  dbp ??= openDB('superapp', 1, {
    upgrade(d) {
      const s = d.createObjectStore('outbox', { keyPath: 'id' });
      s.createIndex('by_user', 'user');
    },
  });
  return dbp;
}

/** The pending messages, oldest first, as the page shows them. */
export const pending = signal<Pending[]>([]);

export async function load(user: string) {
  const all = (await (await db()).getAllFromIndex('outbox', 'by_user', user)) as Pending[];
  pending.value = all.sort((a, b) => a.created_at - b.created_at);
}

export async function put(p: Pending) {
  await (await db()).put('outbox', p);
  pending.value = [...pending.value.filter((x) => x.id !== p.id), p].sort((a, b) => a.created_at - b.created_at);
}

export async function remove(id: string) {
  await (await db()).delete('outbox', id);
  pending.value = pending.value.filter((x) => x.id !== id);
}

export function closeOutbox() {
  void dbp?.then((d) => d.close());
  dbp = null;
  pending.value = [];
}
