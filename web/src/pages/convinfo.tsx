import { useEffect, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import * as api from '../api';
import { call, type Conversation, type Friend } from '../api';
import { conversations, conversationTitle, names, refreshConversations } from '../chat';
import { session } from '../session';
import { t } from '../i18n';
import { Avatar, Page, ErrorText, useAction } from '../ui';

/**
 * A conversation's details: its members and, in a group, renaming,
 * adding and removing members, admins, and leaving. The server decides
 * who may do what (owners and admins manage; anyone may leave); the page
 * offers only what the person may do.
 */
export function ConversationInfo({ id }: { id: string }) {
  const { route } = useLocation();
  const [conv, setConv] = useState<Conversation | null>(conversations.value.find((c) => c.conversation_id === id) ?? null);
  const [friends, setFriends] = useState<Friend[]>([]);
  const [title, setTitle] = useState('');
  const [adding, setAdding] = useState<string[]>([]);
  const { busy, error, setError, run } = useAction();
  const me = session.userId.value;

  const load = async () => {
    const c = await call(() => api.getConversation({ path: { id } }));
    setConv(c);
    setTitle(c.title ?? '');
  };
  useEffect(() => {
    load().catch((e) => setError(e.message));
    call(() => api.listFriends()).then((r) => setFriends(r.friends), () => {});
  }, [id]);

  const act = (fn: () => Promise<unknown>) =>
    run(async () => {
      await fn();
      await Promise.all([load(), refreshConversations()]);
    });

  if (!conv) return <Page title={t('members')} back={`/chats/${id}`}><ErrorText error={error} /></Page>;
  const role = conv.members.find((m) => m.user_id === me)?.role;
  const manager = role === 'owner' || role === 'admin';
  const group = conv.kind === 'group';
  const outside = friends.filter((f) => !conv.members.some((m) => m.user_id === f.user_id));
  const label = (uid: string) => (uid === me ? `${names.value[uid] ?? ''} (${t('you')})` : names.value[uid] || t('unnamed'));

  return (
    <Page title={conversationTitle(conv, t('unnamed'))} back={`/chats/${id}`}>
      <ErrorText error={error} />
      {group && manager && (
        <form class="form" onSubmit={(e) => {
          e.preventDefault();
          void act(() => call(() => api.renameConversation({ path: { id }, body: { title: title.trim() } })));
        }}>
          <label>
            <span>{t('groupName')}</span>
            <input required maxLength={100} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy || !title.trim() || title.trim() === conv.title}>{t('rename')}</button>
        </form>
      )}
      <h2>{t('members')} · {conv.members.length}</h2>
      <ul class="list" aria-label={t('members')}>
        {conv.members.map((m) => (
          <li class="row member" key={m.user_id}>
            <Avatar name={label(m.user_id)} />
            <span class="grow">
              <strong>{label(m.user_id)}</strong>
              {m.role !== 'member' && <span class="pill">{t(m.role === 'owner' ? 'roleOwner' : 'roleAdmin')}</span>}
            </span>
            {group && manager && m.user_id !== me && m.role !== 'owner' && (
              <span class="row-actions">
                {m.role === 'admin' ? (
                  <button type="button" disabled={busy} onClick={() => act(() => call(() => api.removeConversationAdmin({ path: { id, user_id: m.user_id } })))}>{t('removeAdmin')}</button>
                ) : (
                  <button type="button" disabled={busy} onClick={() => act(() => call(() => api.addConversationAdmin({ path: { id, user_id: m.user_id } })))}>{t('makeAdmin')}</button>
                )}
                <button class="danger" type="button" disabled={busy} onClick={() => act(() => call(() => api.removeConversationMember({ path: { id, user_id: m.user_id } })))}>{t('remove')}</button>
              </span>
            )}
          </li>
        ))}
      </ul>
      {group && manager && outside.length > 0 && (
        <>
          <h2>{t('addMembers')}</h2>
          <FriendPicker friends={outside} chosen={adding} onChange={setAdding} />
          <p>
            <button class="primary" type="button" disabled={busy || adding.length === 0} onClick={() => act(async () => {
              await call(() => api.addConversationMembers({ path: { id }, body: { users: adding } }));
              setAdding([]);
            })}>{t('addMembers')}</button>
          </p>
        </>
      )}
      {group && (
        <p class="leave">
          <button class="danger" type="button" disabled={busy} onClick={async () => {
            if (!confirm(t('leaveConfirm'))) return;
            await act(() => call(() => api.removeConversationMember({ path: { id, user_id: me } })));
            route('/chats');
          }}>{t('leave')}</button>
        </p>
      )}
    </Page>
  );
}

/** Checkboxes of friends, labelled by name. */
export function FriendPicker({ friends, chosen, onChange }: { friends: Friend[]; chosen: string[]; onChange: (ids: string[]) => void }) {
  return (
    <ul class="list picker" aria-label={t('chooseFriends')}>
      {friends.map((f) => (
        <li key={f.user_id}>
          <label class="row">
            <input type="checkbox" checked={chosen.includes(f.user_id)} onChange={(e) =>
              onChange(e.currentTarget.checked ? [...chosen, f.user_id] : chosen.filter((x) => x !== f.user_id))} />
            <Avatar name={f.name} />
            <strong class="grow">{f.name}</strong>
          </label>
        </li>
      ))}
    </ul>
  );
}

/** "New group": a name and friends to start with. */
export function NewGroup({ onClose }: { onClose: () => void }) {
  const { route } = useLocation();
  const [friends, setFriends] = useState<Friend[]>([]);
  const [chosen, setChosen] = useState<string[]>([]);
  const [title, setTitle] = useState('');
  const { busy, error, setError, run } = useAction();
  useEffect(() => {
    call(() => api.listFriends()).then((r) => setFriends(r.friends), (e) => setError(e.message));
  }, []);
  const create = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const c = await call(() => api.createConversation({ body: { kind: 'group', title: title.trim(), members: chosen } }));
      await refreshConversations();
      route(`/chats/${c.conversation_id}`);
    }, { leaving: true });
  };
  return (
    <form class="form sheet" onSubmit={create} aria-label={t('newGroup')}>
      <h2>{t('newGroup')}</h2>
      <label>
        <span>{t('groupName')}</span>
        <input required maxLength={100} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
      </label>
      {friends.length === 0 ? <p class="muted">{t('noFriends')}</p> : <FriendPicker friends={friends} chosen={chosen} onChange={setChosen} />}
      <ErrorText error={error} />
      <div class="buttons">
        <button type="button" onClick={onClose}>{t('cancel')}</button>
        <button class="primary" type="submit" disabled={busy || !title.trim() || chosen.length === 0}>{t('create')}</button>
      </div>
    </form>
  );
}
