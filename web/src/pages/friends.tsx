import { useEffect, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import * as api from '../api';
import { call, type Friend, type FriendRequestList, type Block, type PublicProfile } from '../api';
import { names, refreshConversations } from '../chat';
import { t } from '../i18n';
import { Avatar, Page, ErrorText } from '../ui';

export function Friends() {
  const { route } = useLocation();
  const [friends, setFriends] = useState<Friend[]>([]);
  const [requests, setRequests] = useState<FriendRequestList>({ incoming: [], outgoing: [] });
  const [blocks, setBlocks] = useState<Block[]>([]);
  const [query, setQuery] = useState('');
  const [found, setFound] = useState<PublicProfile | null | undefined>(undefined);
  const [error, setError] = useState('');

  const load = async () => {
    try {
      const [f, r, b] = await Promise.all([call(() => api.listFriends()), call(() => api.listFriendRequests()), call(() => api.listBlocks())]);
      setFriends(f.friends);
      setRequests(r);
      setBlocks(b.blocks);
      names.value = { ...names.value, ...Object.fromEntries(f.friends.map((x) => [x.user_id, x.name])) };
    } catch (err) {
      setError((err as Error).message);
    }
  };
  useEffect(() => void load(), []);

  const act = async (fn: () => Promise<unknown>) => {
    setError('');
    try {
      await fn();
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const find = async (e: Event) => {
    e.preventDefault();
    setError('');
    const q = query.trim();
    try {
      setFound(await call(() => api.lookupUser({ query: q.includes('@') ? { email: q } : { phone: q } })));
    } catch (err) {
      if ((err as api.ApiError).status === 404) setFound(null);
      else setError((err as Error).message);
    }
  };

  const chat = async (userId: string) => {
    await act(async () => {
      const c = await call(() => api.createConversation({ body: { members: [userId], kind: 'direct' } }));
      await refreshConversations();
      route(`/chats/${c.conversation_id}`);
    });
  };

  const isFriend = (id: string) => friends.some((f) => f.user_id === id);
  const sent = (id: string) => requests.outgoing.some((f) => f.user_id === id);
  return (
    <Page title={t('friends')}>
      <form class="search" onSubmit={find} role="search">
        <label class="grow">
          <span class="sr-only">{t('findFriend')}</span>
          <input type="search" placeholder={t('findHint')} aria-label={t('findFriend')} value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
        </label>
        <button class="primary" type="submit">{t('find')}</button>
      </form>
      <ErrorText error={error} />
      {found === null && <p class="muted">{t('notFound')}</p>}
      {found && (
        <div class="row card-row">
          <Avatar name={found.name} />
          <span class="grow"><strong>{found.name}</strong><br /><span class="muted small">{found.status_message}</span></span>
          {isFriend(found.user_id) ? (
            <button type="button" onClick={() => chat(found.user_id)}>{t('chat')}</button>
          ) : sent(found.user_id) ? (
            <span class="muted small">{t('requestSent')}</span>
          ) : (
            <button class="primary" type="button" onClick={() => act(() => call(() => api.sendFriendRequest({ body: { user_id: found.user_id } })))}>{t('addFriend')}</button>
          )}
        </div>
      )}
      {requests.incoming.length > 0 && (
        <>
          <h2>{t('requests')}</h2>
          <ul class="list" aria-label={t('requests')}>
            {requests.incoming.map((r) => (
              <li class="row" key={r.user_id}>
                <Avatar name={r.name} />
                <strong class="grow">{r.name}</strong>
                <button class="primary" type="button" onClick={() => act(() => call(() => api.acceptFriendRequest({ path: { user_id: r.user_id } })))}>{t('accept')}</button>
                <button type="button" onClick={() => act(() => call(() => api.declineFriendRequest({ path: { user_id: r.user_id } })))}>{t('decline')}</button>
              </li>
            ))}
          </ul>
        </>
      )}
      {requests.outgoing.length > 0 && (
        <>
          <h2>{t('sentRequests')}</h2>
          <ul class="list" aria-label={t('sentRequests')}>
            {requests.outgoing.map((r) => (
              <li class="row" key={r.user_id}>
                <Avatar name={r.name} />
                <strong class="grow">{r.name}</strong>
                <button type="button" onClick={() => act(() => call(() => api.cancelFriendRequest({ path: { user_id: r.user_id } })))}>{t('cancel')}</button>
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>{t('friends')}</h2>
      {friends.length === 0 ? (
        <p class="empty">{t('noFriends')}</p>
      ) : (
        <ul class="list" aria-label={t('friends')}>
          {friends.map((f) => (
            <li class="row" key={f.user_id}>
              <Avatar name={f.name} />
              <span class="grow"><strong>{f.name}</strong><br /><span class="muted small">{f.status_message}</span></span>
              <button class="primary" type="button" onClick={() => chat(f.user_id)}>{t('chat')}</button>
              <button type="button" onClick={() => act(() => call(() => api.blockUser({ body: { user_id: f.user_id } })))}>{t('block')}</button>
            </li>
          ))}
        </ul>
      )}
      {blocks.length > 0 && (
        <>
          <h2>{t('blocked')}</h2>
          <ul class="list" aria-label={t('blocked')}>
            {blocks.map((b) => (
              <li class="row" key={b.user_id}>
                <Avatar name={b.name} />
                <strong class="grow">{b.name}</strong>
                <button type="button" onClick={() => act(() => call(() => api.unblockUser({ path: { user_id: b.user_id } })))}>{t('unblock')}</button>
              </li>
            ))}
          </ul>
        </>
      )}
    </Page>
  );
}
