// Chat state of the page: conversations, the messages loaded of each, who
// is typing, and the outbox's sender. Everything the event stream pushes
// is applied here, so every screen shows the same thing.
import { signal } from '@preact/signals';
import * as api from './api';
import { call, ApiError, type Conversation, type Message, type StreamFrame, type Event } from './api';
import { events } from './events';
import { sleep } from './net';
import * as outbox from './outbox';
import { session } from './session';

export const conversations = signal<Conversation[]>([]);
export const messages = signal<Record<string, Message[]>>({});
/** Whether older messages remain to page back to, by conversation. */
export const older = signal<Record<string, boolean>>({});
/** Who typed last in a conversation, and until when to show it. */
export const typing = signal<Record<string, { user: string; until: number }>>({});
/** Names of people this page knows (friends, the person). */
export const names = signal<Record<string, string>>({});

let stopEvents: (() => void) | null = null;
let sending = false;

export async function startChat() {
  const user = session.userId.value;
  await outbox.load(user);
  stopEvents?.();
  stopEvents = events.on(onFrame);
  void sendLoop();
  if (events.hasCursor(user)) {
    events.start(user);
    void refreshConversations().catch(() => {});
    return;
  }
  // A new device: the list, then the stream from the cursor the list
  // reflects (not the whole feed from the beginning).
  for (;;) {
    try {
      const cursor = await refreshConversations();
      events.start(user, cursor);
      return;
    } catch {
      if (!session.token) return;
      await sleep(1000);
    }
  }
}

export function stopChat() {
  stopEvents?.();
  stopEvents = null;
  events.stop();
  outbox.closeOutbox();
  conversations.value = [];
  messages.value = {};
}

/** Reads the conversation list; returns the feed cursor it reflects. */
export async function refreshConversations(): Promise<number> {
  const r = await call(() => api.listConversations());
  conversations.value = sortConversations(r.conversations);
  // Members' names (group members need not be friends).
  const known: Record<string, string> = {};
  for (const c of r.conversations) for (const m of c.members) if (m.name && !names.value[m.user_id]) known[m.user_id] = m.name;
  if (Object.keys(known).length) names.value = { ...names.value, ...known };
  return r.cursor;
}

function sortConversations(cs: Conversation[]) {
  return [...cs].sort((a, b) => (b.last_message?.sent_at ?? b.updated_at).localeCompare(a.last_message?.sent_at ?? a.updated_at));
}

/** Loads a conversation's latest messages, or the page before the oldest loaded. */
export async function loadMessages(id: string, back = false) {
  const have = messages.value[id] ?? [];
  // The latest page first (before the end), then pages before the oldest.
  const before = back && have.length ? have[0].seq : Number.MAX_SAFE_INTEGER;
  const r = await call(() => api.listMessages({ path: { id }, query: { limit: 50, before } }));
  merge(id, r.messages);
  older.value = { ...older.value, [id]: r.more };
  const last = messages.value[id]?.at(-1);
  if (last && last.sender !== session.userId.value) void markRead(id, last.seq);
}

function merge(id: string, ms: Message[]) {
  const bySeq = new Map((messages.value[id] ?? []).map((m) => [m.seq, m]));
  for (const m of ms) bySeq.set(m.seq, m);
  const list = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  messages.value = { ...messages.value, [id]: list };
  // A message the outbox still holds is sent: the stream or a page saw it.
  for (const m of ms) {
    if (m.sender === session.userId.value && outbox.pending.value.some((p) => p.id === m.id)) void outbox.remove(m.id);
  }
}

const readSent = new Map<string, number>();

export async function markRead(id: string, seq: number) {
  if ((readSent.get(id) ?? 0) >= seq) return;
  readSent.set(id, seq);
  try {
    await call(() => api.markRead({ path: { id }, body: { seq } }));
  } catch {
    readSent.delete(id);
  }
}

function onFrame(f: StreamFrame) {
  if (f.type === 'typing') {
    if (f.user_id === session.userId.value) return;
    typing.value = { ...typing.value, [f.conversation_id]: { user: f.user_id, until: Date.now() + 4000 } };
    setTimeout(() => (typing.value = { ...typing.value }), 4100);
    return;
  }
  if (f.type !== 'events') return;
  let refresh = false;
  for (const e of f.events) refresh = apply(e) || refresh;
  if (refresh) void refreshConversations().catch(() => {});
}

/** Applies one event; reports whether the conversation list must be read again. */
function apply(e: Event): boolean {
  const id = e.conversation_id;
  switch (e.type) {
    case 'message': {
      if (!e.message) return false;
      merge(id, [e.message]);
      const me = session.userId.value;
      if (e.message.sender !== me) {
        typing.value = { ...typing.value, [id]: { user: '', until: 0 } };
        void call(() => api.markDelivered({ path: { id }, body: { seq: e.message!.seq } })).catch(() => {});
      }
      const c = conversations.value.find((x) => x.conversation_id === id);
      if (!c) return true;
      const unread = e.unread ?? (e.message.sender === me ? c.unread : c.unread + 1);
      conversations.value = sortConversations(conversations.value.map((x) =>
        x.conversation_id === id ? { ...x, last_message: e.message, last_seq: e.message!.seq, unread } : x));
      return false;
    }
    case 'message.deleted': {
      const list = messages.value[id];
      if (list && e.seq) {
        messages.value = { ...messages.value, [id]: list.map((m) => (m.seq === e.seq ? { ...m, text: '', attachment: undefined, deleted_at: e.at } : m)) };
      }
      return false;
    }
    case 'receipt.read':
    case 'receipt.delivered': {
      conversations.value = conversations.value.map((c) => {
        if (c.conversation_id !== id) return c;
        const members = c.members.map((m) => {
          if (m.user_id !== e.user_id || !e.seq) return m;
          const x = m as typeof m & { delivered_seq?: number };
          return e.type === 'receipt.read'
            ? { ...m, read_seq: Math.max(m.read_seq, e.seq) }
            : { ...m, delivered_seq: Math.max(x.delivered_seq ?? 0, e.seq) };
        });
        const mine = e.user_id === session.userId.value && e.type === 'receipt.read';
        return { ...c, members, ...(mine ? { unread: e.unread ?? 0, read_seq: Math.max(c.read_seq, e.seq ?? 0) } : {}) };
      });
      return false;
    }
    default:
      return true; // membership and titles: read the list again
  }
}

/** Puts a message in the outbox; the sender sends it. */
export async function send(conversationId: string, text: string, replyTo?: number) {
  await outbox.put({
    id: crypto.randomUUID(),
    user: session.userId.value,
    conversation_id: conversationId,
    text,
    reply_to: replyTo,
    created_at: Date.now(),
  });
  void sendLoop();
}

/**
 * Sends the outbox, oldest first, one at a time: a conversation's
 * messages arrive in the order they were written. A message is sent with
 * its client id as both its id and its idempotency key, so sending it
 * again, on any DC, stores it once.
 */
async function sendLoop() {
  if (sending) return;
  sending = true;
  try {
    for (;;) {
      const next = outbox.pending.value.find((p) => !p.failed && p.user === session.userId.value);
      if (!next || !session.token) return;
      try {
        const m = await call(() => api.sendMessage({
          path: { id: next.conversation_id },
          headers: { 'Idempotency-Key': next.id },
          body: { id: next.id, text: next.text, ...(next.reply_to ? { reply_to: next.reply_to } : {}) },
        }));
        merge(next.conversation_id, [m]);
        await outbox.remove(next.id);
      } catch (err) {
        if (err instanceof ApiError && err.status >= 400 && err.status < 500 && ![401, 408, 429].includes(err.status)) {
          await outbox.put({ ...next, failed: err.message }); // refused for good: the person decides
        } else {
          await sleep(1000); // no DC answered yet: the same id again
        }
      }
    }
  } finally {
    sending = false;
  }
}

/** Sends a failed message again, or drops it. */
export async function retry(id: string) {
  const p = outbox.pending.value.find((x) => x.id === id);
  if (p) await outbox.put({ ...p, failed: undefined });
  void sendLoop();
}

export function discard(id: string) {
  return outbox.remove(id);
}

export function onlineAgain() {
  void sendLoop();
}

export function displayName(userId: string): string {
  if (userId === session.userId.value) return names.value[userId] ?? '';
  return names.value[userId] ?? '';
}

export function conversationTitle(c: Conversation, unnamed: string): string {
  if (c.title) return c.title;
  const others = c.members.filter((m) => m.user_id !== session.userId.value).map((m) => names.value[m.user_id] || m.name || unnamed);
  return others.join(', ') || unnamed;
}
