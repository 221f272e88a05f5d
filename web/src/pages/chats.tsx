import { conversations, conversationTitle, names } from '../chat';
import { pending } from '../outbox';
import { session } from '../session';
import { t, formatTime } from '../i18n';
import { useState } from 'preact/hooks';
import { Avatar, Page, Icon } from '../ui';
import { NewGroup } from './convinfo';
import { payPreview } from './paycard';
import type { Message } from '../api';

function preview(m: Message | undefined): string {
  if (!m) return '';
  if (m.deleted_at) return t('deleted');
  if (m.attachment) return m.attachment.content_type.startsWith('image/') ? t('photo') : t('file', { name: m.attachment.name });
  if (m.kind === 'system') return '';
  if (m.kind === 'payment') return payPreview(m);
  return m.text;
}

export function Chats() {
  const me = session.userId.value;
  const list = conversations.value;
  void names.value;
  const [creating, setCreating] = useState(false);
  return (
    <Page title={t('chats')} actions={
      <button class="iconbtn" type="button" aria-label={t('newGroup')} aria-expanded={creating} onClick={() => setCreating(!creating)}>
        <Icon d="M12 5v14M5 12h14" />
      </button>
    }>
      {creating && <NewGroup onClose={() => setCreating(false)} />}
      {list.length === 0 ? (
        <p class="empty">{t('noChats')} <a href="/friends">{t('friends')}</a></p>
      ) : (
        <ul class="list" aria-label={t('chats')}>
          {list.map((c) => {
            const title = conversationTitle(c, t('unnamed'));
            const waiting = pending.value.filter((p) => p.conversation_id === c.conversation_id).length;
            const last = c.last_message;
            return (
              <li key={c.conversation_id}>
                <a class="row" href={`/chats/${c.conversation_id}`}>
                  <Avatar name={title} />
                  <span class="grow">
                    <span class="row-top">
                      <strong class="title">{title}</strong>
                      {last && <time class="muted small">{formatTime(last.sent_at)}</time>}
                    </span>
                    <span class="row-bottom">
                      <span class="muted ellipsis">
                        {waiting > 0 ? t('pending') : (last?.sender === me ? `${t('you')}: ` : '') + preview(last)}
                      </span>
                      {c.unread > 0 && <span class="badge" aria-label={`${c.unread} unread`}>{c.unread}</span>}
                    </span>
                  </span>
                </a>
              </li>
            );
          })}
        </ul>
      )}
    </Page>
  );
}
