import { useEffect, useRef, useState } from 'preact/hooks';
import { messages, older, loadMessages, send, retry, discard, typing, conversations, conversationTitle, names, markRead } from '../chat';
import { events } from '../events';
import { pending } from '../outbox';
import { session } from '../session';
import { t, formatTime } from '../i18n';
import { Page, Icon, ErrorText } from '../ui';
import * as api from '../api';
import { call, type Message, type Attachment, type Conversation as Conv } from '../api';
import { net } from '../net';
import { PayCard, PayAction } from './paycard';

const typingEvery = 3000;

export function Conversation({ id }: { id: string }) {
  const [error, setError] = useState('');
  const [text, setText] = useState('');
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const listRef = useRef<HTMLOListElement>(null);
  const lastTyping = useRef(0);
  const me = session.userId.value;
  const conv = conversations.value.find((c) => c.conversation_id === id);
  const list = messages.value[id] ?? [];
  const mine = pending.value.filter((p) => p.conversation_id === id && !list.some((m) => m.id === p.id));
  const who = typing.value[id];
  const typingName = who && who.until > Date.now() ? names.value[who.user] || t('someone') : '';

  useEffect(() => {
    loadMessages(id).catch((e) => setError((e as Error).message));
  }, [id]);

  // Keep the newest message in view as messages arrive.
  const count = list.length + mine.length;
  useEffect(() => {
    const el = listRef.current;
    if (el) el.scrollTop = el.scrollHeight;
    const last = list.at(-1);
    if (last && last.sender !== me && document.visibilityState === 'visible') void markRead(id, last.seq);
  }, [count, id]);

  const submit = async (e: Event) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText('');
    setReplyTo(null);
    await send(id, body, replyTo?.seq);
  };

  const onInput = (v: string) => {
    setText(v);
    if (Date.now() - lastTyping.current > typingEvery) {
      lastTyping.current = Date.now();
      events.typing(id);
    }
  };

  const attach = async (file: File) => {
    setError('');
    try {
      const a = await call(() => api.uploadAttachment({ path: { id }, query: { name: file.name }, body: file, headers: { 'Content-Type': file.type || 'application/octet-stream' } as never }));
      const mid = crypto.randomUUID();
      await call(() => api.sendMessage({ path: { id }, headers: { 'Idempotency-Key': mid }, body: { id: mid, attachment_id: a.attachment_id } }));
      await loadMessages(id);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const remove = async (m: Message) => {
    try {
      await call(() => api.deleteMessage({ path: { id, seq: m.seq } }));
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const title = conv ? conversationTitle(conv, t('unnamed')) : '';
  return (
    <Page title={title} back="/chats" actions={
      <a class="iconbtn" href={`/chats/${id}/info`} aria-label={t('details')}>
        <Icon d="M12 11v6M12 7h.01M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z" />
      </a>
    }>
      <div class="chat">
        <ol class="messages" aria-label={t('messages')} ref={listRef}>
          {older.value[id] && (
            <li class="older">
              <button class="link" type="button" onClick={() => loadMessages(id, true).catch((e) => setError(e.message))}>
                {t('olderMessages')}
              </button>
            </li>
          )}
          {list.map((m) => (
            <Bubble key={m.seq} m={m} conv={conv} mine={m.sender === me} onReply={() => setReplyTo(m)} onDelete={() => remove(m)}
              replied={m.reply_to ? list.find((x) => x.seq === m.reply_to) : undefined} />
          ))}
          {mine.map((p) => (
            <li key={p.id} class="msg mine pending" data-state={p.failed ? 'failed' : 'pending'}>
              <div class="bubble">
                <p class="text">{p.text}</p>
                <span class="meta">
                  {p.failed ? (
                    <>
                      <span class="error">{t('failed')}: {p.failed}</span>{' '}
                      <button class="link" type="button" onClick={() => retry(p.id)}>{t('retry')}</button>{' '}
                      <button class="link" type="button" onClick={() => discard(p.id)}>{t('discard')}</button>
                    </>
                  ) : (
                    <span aria-label={t('pending')}>
                      <Icon d="M12 7v5l3 2M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z" /> {t('pending')}
                    </span>
                  )}
                </span>
              </div>
            </li>
          ))}
        </ol>
        <p class="typing" aria-live="polite">{typingName ? t('typing', { name: typingName }) : ''}</p>
        <ErrorText error={error} />
        {replyTo && (
          <div class="replying">
            <span class="muted small">{t('replyingTo')}</span> <span class="ellipsis">{replyTo.text || replyTo.attachment?.name}</span>
            <button class="link" type="button" onClick={() => setReplyTo(null)}>{t('cancel')}</button>
          </div>
        )}
        <form class="composer" onSubmit={submit}>
          <label class="iconbtn attach">
            <span class="sr-only">{t('attach')}</span>
            <Icon d="M21 12l-8.5 8.5a5 5 0 0 1-7-7L14 5a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 8" />
            <input type="file" class="sr-only" onChange={(e) => {
              const f = e.currentTarget.files?.[0];
              e.currentTarget.value = '';
              if (f) void attach(f);
            }} />
          </label>
          <PayAction conv={conv} />
          <input class="grow" aria-label={t('message')} placeholder={t('message')} autocomplete="off" value={text} onInput={(e) => onInput(e.currentTarget.value)} />
          <button class="primary" type="submit" disabled={!text.trim()}>{t('send')}</button>
        </form>
      </div>
    </Page>
  );
}

function receipt(m: Message, conv: Conv | undefined, me: string): string {
  if (!conv) return t('sent');
  const others = conv.members.filter((x) => x.user_id !== me) as (Conv['members'][number] & { delivered_seq?: number })[];
  if (others.length && others.every((x) => x.read_seq >= m.seq)) return t('read');
  if (others.some((x) => x.read_seq >= m.seq || (x.delivered_seq ?? 0) >= m.seq)) return t('delivered');
  return t('sent');
}

function Bubble({ m, conv, mine, replied, onReply, onDelete }: { m: Message; conv?: Conv; mine: boolean; replied?: Message; onReply: () => void; onDelete: () => void }) {
  if (m.kind === 'system') {
    return <li class="system muted small">{systemText(m)}</li>;
  }
  if (m.kind === 'payment' && !m.deleted_at) return <PayCard m={m} mine={mine} conv={conv} />;
  const me = session.userId.value;
  const sender = names.value[m.sender] || '';
  return (
    <li class={mine ? 'msg mine' : 'msg'} data-seq={m.seq}>
      {!mine && conv?.kind === 'group' && <span class="sender small">{sender}</span>}
      <div class="bubble">
        {replied && <p class="quote small">{replied.deleted_at ? t('deleted') : replied.text || replied.attachment?.name}</p>}
        {m.deleted_at ? (
          <p class="text deleted">{t('deleted')}</p>
        ) : (
          <>
            {m.attachment && <AttachmentView conv={m.conversation_id} a={m.attachment} />}
            {m.text && <p class="text">{m.text}</p>}
          </>
        )}
        <span class="meta">
          <time dateTime={m.sent_at}>{formatTime(m.sent_at)}</time>
          {mine && !m.deleted_at && <span class="receipt"> · {receipt(m, conv, me)}</span>}
        </span>
      </div>
      {!m.deleted_at && (
        <span class="tools">
          <button class="link small" type="button" onClick={onReply}>{t('reply')}</button>
          {mine && <button class="link small" type="button" onClick={onDelete}>{t('deleteForAll')}</button>}
        </span>
      )}
    </li>
  );
}

function systemText(m: Message): string {
  const s = m.system;
  if (!s) return '';
  const who = (s.users ?? []).map((u) => names.value[u] || t('someone')).join(', ');
  return `${who} ${s.event}${s.title ? ` “${s.title}”` : ''}`;
}

/** An attachment: images previewed, other files offered for download. */
function AttachmentView({ conv, a }: { conv: string; a: Attachment }) {
  const [url, setUrl] = useState('');
  const image = a.content_type.startsWith('image/');
  useEffect(() => {
    if (!image) return;
    let revoke = '';
    void fetchAttachment(conv, a.attachment_id).then((u) => {
      revoke = u;
      setUrl(u);
    });
    return () => revoke && URL.revokeObjectURL(revoke);
  }, [a.attachment_id]);
  if (image) {
    return url ? <img class="preview" src={url} alt={a.name} /> : <span class="preview placeholder" role="img" aria-label={a.name} />;
  }
  const download = async () => {
    const u = await fetchAttachment(conv, a.attachment_id);
    const link = document.createElement('a');
    link.href = u;
    link.download = a.name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(u), 10_000);
  };
  return (
    <button class="file" type="button" onClick={download}>
      <Icon d="M6 3h8l4 4v14H6zM14 3v4h4" /> <span class="ellipsis">{a.name}</span> <span class="muted small">{Math.ceil(a.size / 1024)} KB</span>
    </button>
  );
}

async function fetchAttachment(conv: string, id: string): Promise<string> {
  const h = new Headers({ Authorization: `Bearer ${session.token}` });
  const r = await net.send('GET', `/v1/conversations/${encodeURIComponent(conv)}/attachments/${encodeURIComponent(id)}`, h, undefined);
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return URL.createObjectURL(await r.blob());
}
