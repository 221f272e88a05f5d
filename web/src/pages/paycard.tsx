// Money in the app: the payment and red-envelope cards of a conversation,
// the pay action next to its composer, and what the wallet and the pay
// page share with them (the live balance, amounts, confirmation sheets,
// refusals in plain words).
//
// Every write that moves money carries a client-chosen id, made once per
// thing the person decided (see useMoneyId) and sent again unchanged when
// they retry: the server pays an id once, on any DC.
import { render, type ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { signal } from '@preact/signals';
import * as api from '../api';
import { call, ApiError, type Message, type Conversation, type Envelope, type Wallet } from '../api';
import { names, loadMessages } from '../chat';
import { newId } from '../net';
import { session } from '../session';
import { t, formatMoney, formatTime, minorDigits, type Key } from '../i18n';
import { Icon, useAction } from '../ui';

/** A `payment` message's card (the API's Message schema does not list it yet). */
export type PayCardData = {
  type: 'transfer' | 'envelope';
  transfer_id?: string;
  envelope_id?: string;
  to_user?: string;
  amount: number;
  currency: string;
  shares?: number;
  split?: 'equal' | 'random';
};
export type PayMessage = Message & { payment?: PayCardData };

export const defaultCurrency = 'KRW';

// ---- The live balance -------------------------------------------------

/** The person's wallet as last read; null until read. */
export const wallet = signal<Wallet | null>(null);

export async function refreshWallet(): Promise<Wallet> {
  const w = await call(() => api.getWallet());
  wallet.value = w;
  return w;
}

/** The wallet's main currency: its first balance's, else KRW. */
export function mainCurrency(w: Wallet | null = wallet.value): string {
  return w?.balances[0]?.currency ?? defaultCurrency;
}

export function balanceOf(w: Wallet | null, currency = mainCurrency(w)) {
  return w?.balances.find((b) => b.currency === currency) ?? { currency, available: 0, pending: 0 };
}

const pollEvery = 2000;

/**
 * Reads the wallet every 2 s while the page is visible (the API pushes no
 * wallet events), and once more as soon as it becomes visible again.
 * `also` runs on each tick (pay requests, the statement's first page).
 */
export function useLiveWallet(also?: () => Promise<unknown>) {
  const extra = useRef(also);
  extra.current = also;
  useEffect(() => {
    let stopped = false;
    let busy = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      clearTimeout(timer);
      if (stopped) return;
      if (!busy && document.visibilityState === 'visible' && session.token) {
        busy = true;
        try {
          await Promise.all([refreshWallet(), extra.current?.()]);
        } catch {
          // The next tick tries again; the page shows what it read last.
        } finally {
          busy = false;
        }
      }
      if (!stopped) timer = setTimeout(tick, pollEvery);
    };
    const onVisible = () => document.visibilityState === 'visible' && void tick();
    void tick();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, []);
}

// ---- Amounts, ids and refusals -----------------------------------------

/** Parses what a person typed ("12,000", "12000원") into minor units; null if it is not an amount. */
export function parseAmount(text: string, currency: string): number | null {
  const s = text.replace(/[\s,_₩$€£¥원]/g, '');
  const digits = minorDigits(currency);
  const re = digits > 0 ? new RegExp(`^\\d+(\\.\\d{0,${digits}})?$`) : /^\d+$/;
  if (!re.test(s)) return null;
  const n = Math.round(Number(s) * 10 ** digits);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/**
 * The id of one money decision: the same while `deps` stay the same (a
 * retry after a timeout or an error pays once), a new one when they change
 * (another amount, another person, the next payment).
 */
export function useMoneyId(...deps: unknown[]): string {
  const key = JSON.stringify(deps);
  const ref = useRef({ key: '', id: '' });
  if (ref.current.key !== key) ref.current = { key, id: newId() };
  return ref.current.id;
}

const refusals: Record<string, Key> = {
  exceeds_credits: 'errNoMoney',
  limit_exceeded: 'errLimit',
  blocked: 'errBlocked',
  envelope_empty: 'errEnvelopeEmpty',
  envelope_expired: 'errEnvelopeExpired',
  already_claimed: 'errAlreadyClaimed',
  payment_code_invalid: 'errCodeInvalid',
  qr_invalid: 'errQr',
  request_expired: 'errRequestExpired',
  network: 'errNetwork',
};

/** A refusal in the person's words; the API's message when there is no better one. */
export function moneyError(err: unknown): string {
  if (err instanceof ApiError) {
    const k = refusals[err.code];
    if (k) return t(k);
    if (err.status === 409 && err.code === 'conflict') return t('errDecided');
    return err.message || t('error');
  }
  return (err as Error)?.message || t('error');
}

/** A ref that takes the focus when its element appears (a sheet's next step). */
export function useAutoFocus<T extends HTMLElement>() {
  const ref = useRef<T>(null);
  useEffect(() => ref.current?.focus(), []);
  return ref;
}

export function nameOf(userId: string | undefined): string {
  if (!userId) return t('someone');
  if (userId === session.userId.value) return t('you');
  return names.value[userId] || t('someone');
}

// ---- Sheets ---------------------------------------------------------------

/**
 * Renders its children at the end of the body: a sheet opened from inside
 * a form (the composer) must not nest its own form in it.
 */
function Portal({ children }: { children: ComponentChildren }) {
  const host = useRef<HTMLDivElement | null>(null);
  host.current ??= document.createElement('div');
  useLayoutEffect(() => {
    const el = host.current!;
    document.body.appendChild(el);
    return () => {
      render(null, el);
      el.remove();
    };
  }, []);
  useLayoutEffect(() => {
    render(<>{children}</>, host.current!);
  });
  return null;
}

let sheetSeq = 0;

/** A modal sheet (a native dialog: focus kept inside, Escape closes). */
export function Sheet({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [id] = useState(() => `sheet-${++sheetSeq}`);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <Portal>
      <dialog ref={ref} class="paysheet" aria-labelledby={id} onClose={onClose} onCancel={(e) => { e.preventDefault(); onClose(); }}>
        <header class="paysheet-head">
          <h2 id={id}>{title}</h2>
          <button type="button" class="iconbtn plain" aria-label={t('close')} onClick={onClose}>
            <Icon d="M6 6l12 12M18 6L6 18" />
          </button>
        </header>
        <div class="paysheet-body">{children}</div>
      </dialog>
    </Portal>
  );
}

/** An amount field: digits typed, the formatted amount read back below. */
export function AmountField({ value, onInput, currency, label = t('amount'), quick, autoFocus }: {
  value: string; onInput: (v: string) => void; currency: string; label?: string; quick?: number[]; autoFocus?: boolean;
}) {
  const [id] = useState(() => `amount-${++sheetSeq}`);
  const n = parseAmount(value, currency);
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (autoFocus) ref.current?.focus();
  }, []);
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <div class="amount-input">
        <input id={id} ref={ref} inputMode={minorDigits(currency) ? 'decimal' : 'numeric'} autocomplete="off" enterKeyHint="next"
          aria-describedby={`${id}-read`} value={value} onInput={(e) => onInput(e.currentTarget.value)} />
        <span class="unit" aria-hidden="true">{currency === 'KRW' ? '₩' : currency}</span>
      </div>
      <p id={`${id}-read`} class="amount-read muted small" aria-live="polite">{n ? formatMoney(n, currency) : '\u00a0'}</p>
      {quick && (
        <div class="chips">
          {quick.map((q) => (
            <button type="button" class="chip" onClick={() => onInput(String(((n ?? 0) + q) / 10 ** minorDigits(currency)))}>
              {t('addAmount', { amount: formatMoney(q, currency) })}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}

/** The big amount of a review step, with what it is for. */
export function Review({ amount, currency, lines }: { amount: number; currency: string; lines: ComponentChildren }) {
  return (
    <div class="review">
      <p class="review-amount">{formatMoney(amount, currency)}</p>
      <div class="review-lines">{lines}</div>
    </div>
  );
}

/** The buttons of a review step; the confirming one takes the focus. */
export function Confirm({ label, busy, onBack, onConfirm, backLabel = t('edit') }: {
  label: string; busy: boolean; onBack: () => void; onConfirm: () => void; backLabel?: string;
}) {
  const ref = useAutoFocus<HTMLButtonElement>();
  return (
    <div class="buttons">
      <button type="button" disabled={busy} onClick={onBack}>{backLabel}</button>
      <button ref={ref} type="button" class="primary" disabled={busy} aria-busy={busy} onClick={onConfirm}>
        {busy ? t('working') : label}
      </button>
    </div>
  );
}

/** What the person may spend, read live; with a way to top up unless on the wallet. */
export function AvailableLine({ topUpLink = true }: { topUpLink?: boolean }) {
  const w = wallet.value;
  if (!w) return null;
  const b = balanceOf(w);
  return (
    <p class="available small">
      {t('available')} <strong>{formatMoney(b.available, b.currency)}</strong>
      {topUpLink && <>{' · '}<a href="/wallet">{t('topUp')}</a></>}
    </p>
  );
}

// ---- Cards in a conversation ------------------------------------------------

/** A `payment` message as a card in the "Messages" list. */
export function PayCard({ m, mine, conv }: { m: PayMessage; mine: boolean; conv?: Conversation }) {
  const p = m.payment;
  return (
    <li class={mine ? 'msg mine paymsg' : 'msg paymsg'} data-seq={m.seq}>
      {!mine && conv?.kind === 'group' && <span class="sender small">{nameOf(m.sender)}</span>}
      {!p ? (
        <div class="bubble"><p class="text">{m.text}</p></div>
      ) : p.type === 'envelope' ? (
        <EnvelopeCard m={m} p={p} mine={mine} />
      ) : (
        <TransferCard m={m} p={p} mine={mine} />
      )}
    </li>
  );
}

function TransferCard({ m, p, mine }: { m: PayMessage; p: PayCardData; mine: boolean }) {
  const me = session.userId.value;
  const line = mine
    ? t('cardSentTo', { name: nameOf(p.to_user) })
    : p.to_user === me
      ? t('cardReceivedFrom', { name: nameOf(m.sender) })
      : t('cardFromTo', { from: nameOf(m.sender), to: nameOf(p.to_user) });
  return (
    <article class="paycard transfer" aria-label={t('paymentCard', { amount: formatMoney(p.amount, p.currency) })}>
      <p class="paycard-kind"><Icon d="M4 8h13l-3-3M20 16H7l3 3" /> {line}</p>
      <p class="paycard-amount">{formatMoney(p.amount, p.currency)}</p>
      {m.text && <p class="paycard-memo">{m.text}</p>}
      <p class="paycard-meta"><time dateTime={m.sent_at}>{formatTime(m.sent_at)}</time></p>
    </article>
  );
}

function EnvelopeCard({ m, p, mine }: { m: PayMessage; p: PayCardData; mine: boolean }) {
  const me = session.userId.value;
  const [env, setEnv] = useState<Envelope | null>(null);
  const [gone, setGone] = useState(false);
  const { busy, error, setError, run } = useAction(moneyError);
  const ref = useRef<HTMLElement>(null);
  const id = p.envelope_id ?? '';

  const load = async () => {
    try {
      setEnv(await call(() => api.getEnvelope({ path: { envelope_id: id } })));
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) setGone(true);
    }
  };

  // Read its state now, and again every few seconds while it is open and
  // in view: other members' claims are not pushed.
  useEffect(() => {
    if (!id) return;
    void load();
    let seen = true;
    const io = 'IntersectionObserver' in window && ref.current
      ? new IntersectionObserver((es) => (seen = es.some((e) => e.isIntersecting)))
      : null;
    if (io && ref.current) io.observe(ref.current);
    const timer = setInterval(() => {
      if (seen && document.visibilityState === 'visible') void load();
    }, 4000);
    return () => {
      clearInterval(timer);
      io?.disconnect();
    };
  }, [id]);

  const claim = () =>
    run(async () => {
      setEnv(await call(() => api.claimEnvelope({ path: { envelope_id: id } })));
      void refreshWallet().catch(() => {});
    }, { onError: (err) => { if (err instanceof ApiError && err.code !== 'network') void load(); } });

  const split = t(p.split === 'random' ? 'splitRandom' : 'splitEqual');
  const shares = env?.shares ?? p.shares ?? 1;
  const claims = env ? Object.entries(env.claims) : [];
  const got = env?.claims[me];
  const status = env?.status;
  const canClaim = !mine && env && got === undefined && status === 'open';
  const from = nameOf(m.sender);
  return (
    <article ref={ref} class="paycard envelope" data-status={status ?? 'loading'}
      aria-label={t('envelopeCard', { amount: formatMoney(p.amount, p.currency) })}>
      <p class="paycard-kind">
        <Icon d="M4 9l8 5 8-5M4 9v10h16V9M4 9l8-5 8 5" /> {mine ? t('yourEnvelope') : t('envelopeFrom', { name: from })}
      </p>
      <p class="paycard-memo strong">{m.text || t('envelopeDefault')}</p>
      <p class="paycard-amount">{formatMoney(p.amount, p.currency)}</p>
      <p class="paycard-sub">{t('sharesOf', { shares, split })}</p>
      <div class="paycard-state" aria-live="polite">
        {gone ? (
          <p>{t('envelopeNotForYou')}</p>
        ) : got !== undefined ? (
          <p class="got">{t('youGot', { amount: formatMoney(got, p.currency) })}</p>
        ) : canClaim ? (
          <button type="button" class="open-envelope" disabled={busy} aria-label={t('openEnvelopeFor', { name: from })} onClick={claim}>
            {busy ? t('working') : t('openEnvelope')}
          </button>
        ) : null}
        {env && (
          <p class="small">
            {status === 'emptied' ? t('envelopeEmptied') : status === 'returned' ? t('envelopeReturned')
              : `${t('claimedOf', { n: claims.length, shares })} · ${t('leftInEnvelope', { amount: formatMoney(env.remaining, env.currency) })}`}
          </p>
        )}
        {error && <p class="small" role="alert">{error}</p>}
      </div>
      {claims.length > 0 && (
        <ul class="claims small" aria-label={t('claimedOf', { n: claims.length, shares })}>
          {claims.map(([u, a]) => <li key={u}><span>{nameOf(u)}</span> <span>{formatMoney(a, env!.currency)}</span></li>)}
        </ul>
      )}
      <p class="paycard-meta"><time dateTime={m.sent_at}>{formatTime(m.sent_at)}</time></p>
    </article>
  );
}

/** A one-line summary of a payment message (for lists of conversations). */
export function payPreview(m: PayMessage): string {
  const p = m.payment;
  if (!p) return m.text;
  const amount = formatMoney(p.amount, p.currency);
  return p.type === 'envelope' ? `${t('redEnvelope')} ${amount}` : t('paymentCard', { amount });
}

// ---- The pay action next to the composer ------------------------------

/** A button beside the composer: send money or a red envelope here. */
export function PayAction({ conv }: { conv?: Conversation }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" class="iconbtn plain payaction" aria-label={t('payAction')} title={t('payAction')}
        disabled={!conv} onClick={() => setOpen(true)}>
        <Icon d="M3 7h18v12H3zM3 7l3-4h12l3 4M16 13h2" />
      </button>
      {open && conv && <PaySheet conv={conv} onClose={() => setOpen(false)} />}
    </>
  );
}

type Mode = 'money' | 'envelope';

function PaySheet({ conv, onClose }: { conv: Conversation; onClose: () => void }) {
  const me = session.userId.value;
  const others = conv.members.filter((x) => x.user_id !== me).map((x) => x.user_id);
  const [mode, setMode] = useState<Mode>('money');
  const [to, setTo] = useState(others.length === 1 ? others[0] : '');
  const [text, setText] = useState('');
  const [memo, setMemo] = useState('');
  const [shares, setShares] = useState(String(Math.max(1, Math.min(others.length, 100))));
  const [split, setSplit] = useState<'equal' | 'random'>(others.length > 1 ? 'random' : 'equal');
  const [step, setStep] = useState<'edit' | 'review'>('edit');
  const { busy, error, setError, run } = useAction(moneyError);
  const currency = mainCurrency();
  const amount = parseAmount(text, currency);
  const n = Math.floor(Number(shares));
  const id = useMoneyId(mode, to, amount, memo.trim(), n, split);

  useEffect(() => void refreshWallet().catch(() => {}), []);

  const next = (e: Event) => {
    e.preventDefault();
    setError('');
    if (!amount) return setError(t('errAmount'));
    if (mode === 'money' && !to) return setError(t('chooseFriend'));
    if (mode === 'envelope') {
      if (!(n >= 1 && n <= 100)) return setError(t('envelopeShares'));
      if (split === 'equal' && amount < n) return setError(t('notEnoughShares', { amount: formatMoney(1, currency) }));
    }
    setStep('review');
  };

  const send = () => {
    if (!amount) return;
    const text = memo.trim() || undefined;
    return run(async () => {
      if (mode === 'money') {
        await call(() => api.payInConversation({
          path: { id: conv.conversation_id },
          headers: { 'Idempotency-Key': id } as never,
          body: { id, amount, currency, to_user: to, ...(text ? { text } : {}) },
        }));
      } else {
        await call(() => api.sendEnvelope({
          path: { id: conv.conversation_id },
          headers: { 'Idempotency-Key': id } as never,
          body: { id, amount, currency, shares: n, split, ...(text ? { text } : {}) },
        }));
      }
      void refreshWallet().catch(() => {});
      void loadMessages(conv.conversation_id).catch(() => {});
      onClose();
    });
  };

  const title = mode === 'money' ? t('sendMoney') : t('redEnvelope');
  const splitName = t(split === 'random' ? 'splitRandom' : 'splitEqual');
  return (
    <Sheet title={title} onClose={onClose}>
      {step === 'edit' ? (
        <form class="form" onSubmit={next} noValidate>
          <div class="segmented wide" role="group" aria-label={t('payAction')}>
            <button type="button" aria-pressed={mode === 'money'} onClick={() => setMode('money')}>{t('money')}</button>
            <button type="button" aria-pressed={mode === 'envelope'} onClick={() => setMode('envelope')}>{t('redEnvelope')}</button>
          </div>
          <AvailableLine />
          {mode === 'money' && others.length > 1 && (
            <fieldset class="pick">
              <legend>{t('payee')}</legend>
              {others.map((u) => (
                <label class="pick-row" key={u}>
                  <input type="radio" name="payee" value={u} checked={to === u} onChange={() => setTo(u)} />
                  <span>{nameOf(u)}</span>
                </label>
              ))}
            </fieldset>
          )}
          {mode === 'money' && others.length === 1 && (
            <p class="to-line">{t('sendTo')} <strong>{nameOf(to)}</strong></p>
          )}
          <AmountField value={text} onInput={setText} currency={currency} autoFocus />
          {mode === 'envelope' && (
            <div class="two">
              <label class="field">
                <span>{t('envelopeShares')}</span>
                <input type="number" min={1} max={100} inputMode="numeric" value={shares} onInput={(e) => setShares(e.currentTarget.value)} />
              </label>
              <div class="field">
                <span id="split-label">{t('envelopeSplit')}</span>
                <div class="segmented" role="group" aria-labelledby="split-label">
                  <button type="button" aria-pressed={split === 'equal'} onClick={() => setSplit('equal')}>{t('splitEqual')}</button>
                  <button type="button" aria-pressed={split === 'random'} onClick={() => setSplit('random')}>{t('splitRandom')}</button>
                </div>
              </div>
            </div>
          )}
          <label class="field">
            <span>{t('memo')}</span>
            <input maxLength={200} value={memo} placeholder={mode === 'envelope' ? t('envelopeDefault') : ''} onInput={(e) => setMemo(e.currentTarget.value)} />
          </label>
          {error && <p class="error" role="alert">{error}</p>}
          <button class="primary big" type="submit">{t('next')}</button>
        </form>
      ) : (
        <div class="form">
          <Review amount={amount!} currency={currency} lines={
            mode === 'money'
              ? <p>{t('sendReview', { amount: formatMoney(amount!, currency), name: nameOf(to) })}</p>
              : <p>{t('envelopeReview', { amount: formatMoney(amount!, currency), shares: n, split: splitName })}</p>
          } />
          {memo.trim() && <p class="review-memo">“{memo.trim()}”</p>}
          {error && <p class="error" role="alert">{error}</p>}
          <Confirm busy={busy} onBack={() => setStep('edit')} onConfirm={send}
            label={mode === 'money' ? t('confirmSend', { amount: formatMoney(amount!, currency) }) : t('confirmEnvelope')} />
        </div>
      )}
    </Sheet>
  );
}
