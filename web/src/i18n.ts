// English and Korean. The browser's language decides, the person may
// switch in Settings (kept in localStorage). Accessible names in English
// are a public contract (tools drive the app by them): change with care.
import { signal } from '@preact/signals';

const en = {
  appName: 'superapp',
  login: 'Log in', signup: 'Sign up', logout: 'Log out',
  loginTitle: 'Welcome back', signupTitle: 'Create your account',
  loginField: 'Email or phone', password: 'Password', name: 'Name',
  noAccount: 'New here?', haveAccount: 'Already have an account?',
  passwordHint: 'At least 10 characters.',
  chats: 'Chats', friends: 'Friends', wallet: 'Wallet', pay: 'Pay', apps: 'Apps', settings: 'Settings',
  noChats: 'No conversations yet. Start one from your friends.',
  message: 'Message', send: 'Send', messages: 'Messages',
  pending: 'Sending…', failed: 'Not sent', retry: 'Retry', discard: 'Delete',
  typing: '{name} is typing…', someone: 'Someone',
  read: 'Read', delivered: 'Delivered', sent: 'Sent',
  deleted: 'This message was deleted.', deleteForAll: 'Delete for everyone', reply: 'Reply',
  replyingTo: 'Replying to', cancel: 'Cancel', olderMessages: 'Show older messages',
  back: 'Back', unnamed: 'Unnamed', newGroup: 'New group', groupName: 'Group name',
  create: 'Create', members: 'Members', you: 'You',
  attach: 'Attach a file', download: 'Download',
  moved: 'Moved to {dc}: your data center is not answering. Nothing you typed is lost.',
  reconnecting: 'Reconnecting…',
  profile: 'Profile', statusMessage: 'Status message', save: 'Save', saved: 'Saved',
  devices: 'Devices', thisDevice: 'This device', revoke: 'Log out this device', language: 'Language',
  findFriend: 'Find a friend', findHint: 'Phone number or email', find: 'Find',
  addFriend: 'Add friend', accept: 'Accept', decline: 'Decline', requests: 'Requests', sentRequests: 'Sent requests',
  block: 'Block', unblock: 'Unblock', blocked: 'Blocked', chat: 'Chat', notFound: 'Nobody found with that phone or email.',
  noFriends: 'No friends yet. Find people by their phone number or email.',
  requestSent: 'Request sent',
  consentTitle: '{app} wants to use your superapp account',
  consentBy: 'Registered by {owner}', consentRedirect: 'You will be sent back to {host}.',
  allow: 'Allow', deny: 'Deny', scope_openid: 'Know who you are', scope_profile: 'See your name and status message',
  scope_email: 'See your email address', scope_phone: 'See your phone number', scope_offline_access: 'Stay connected when you are away',
  scope_friends: 'See your friends list', scope_pay: 'Ask you to pay',
  connectedApps: 'Apps you allowed', noApps: 'You have not allowed any app yet.', since: 'Since {date}',
  loading: 'Loading…', error: 'Something went wrong.', notFoundPage: 'This page does not exist.',
  home: 'Home', comingSoon: 'Coming soon',
  details: 'Details', rename: 'Rename', roleOwner: 'Owner', roleAdmin: 'Admin', makeAdmin: 'Make admin', removeAdmin: 'Remove admin',
  remove: 'Remove', addMembers: 'Add members', leave: 'Leave group', leaveConfirm: 'Leave this group? You will no longer get its messages.',
  chooseFriends: 'Choose friends', connectedTo: 'Connected to {dc}',
  photo: 'Photo', file: 'File: {name}',
  signedIn: 'Signed in {date}',
  consentDone: 'This request was already answered. Go back to {app} and start again.', consentExpired: 'This request has expired. Go back to {app} and start again.',
  // Money: wallet, pay in a shop, payments and red envelopes in chats.
  available: 'Available', pendingMoney: 'Pending', balance: 'Balance',
  topUp: 'Top up', topUpTitle: 'Top up from your bank', topUpReview: 'Add {amount} to your wallet from your bank?',
  topUpDone: '{amount} added to your wallet.', addAmount: '+{amount}',
  sendMoney: 'Send money', sendTo: 'To', chooseFriend: 'Choose a friend', noFriendsToPay: 'Add friends to send them money.',
  amount: 'Amount', memo: 'Memo (optional)', next: 'Next', edit: 'Edit', close: 'Close', done: 'Done',
  confirmSend: 'Send {amount}', sendReview: 'Send {amount} to {name}?', sentMoney: '{amount} sent to {name}.',
  working: 'Working…', paying: 'Paying…',
  statement: 'Statement', noStatement: 'No money has moved yet. Top up to get started.', showMore: 'Show more',
  st_topup: 'Top-up', st_sent: 'Paid', st_sentTo: 'Paid {name}', st_received: 'Received', st_receivedFrom: 'From {name}',
  st_hold: 'Held', st_captured: 'Paid from a hold', st_released: 'Hold released', st_envelope: 'Red envelope',
  st_returned: 'Red envelope returned', st_refund: 'Refund', st_withdrawal: 'To your bank',
  payRequests: 'Pay requests', payRequestFrom: '{app} asks you to pay', approve: 'Approve', approveReview: 'Pay {amount} to {app}?',
  expiresAt: 'Expires {time}', approved: 'Paid {amount} to {app}.', declined: 'Declined.', anApp: 'An app',
  payInShop: 'Pay in a shop', myCode: 'My code', scan: 'Scan',
  codeHelp: 'Show this to the shop. It works once and renews by itself.',
  codeDigits: 'Payment code digits', codeQr: 'Payment code QR', renewsIn: 'Renews in {s} s', renewCode: 'New code',
  codeLoading: 'Getting your code…', codeHidden: 'Your code is hidden while the page is in the background.',
  paidShop: 'Paid {amount}', newBalance: 'Balance {amount}',
  scanHelp: 'Point the camera at the shop’s QR code.', startCamera: 'Use the camera', stopCamera: 'Stop the camera',
  cameraVideo: 'Camera', cameraUnavailable: 'The camera is not available here. Type the shop’s code instead.',
  cameraDenied: 'Camera access was refused. Type the shop’s code instead.',
  shopCode: 'Shop’s code', shopCodeHint: 'The code printed under the shop’s QR, like superapp:pay?m=…',
  continue: 'Continue', notShopQr: 'That is not a superapp shop code.',
  payShop: 'Pay {name}', shop: 'Shop {id}', amountByShop: 'The shop set the amount.', confirmPay: 'Pay {amount}', confirmPayShop: 'Pay',
  paidTo: 'Paid {amount} to {name}.',
  payAction: 'Pay or give a red envelope', money: 'Money', redEnvelope: 'Red envelope',
  envelopeShares: 'Number of shares', envelopeSplit: 'Split', splitEqual: 'Equal', splitRandom: 'Random',
  envelopeReview: '{amount} in a red envelope, {shares} shares ({split})', confirmEnvelope: 'Send the envelope',
  envelopeDefault: 'Best wishes!', sharesOf: '{shares} shares · {split}',
  openEnvelope: 'Open', openEnvelopeFor: 'Open red envelope from {name}', youGot: 'You got {amount}',
  claimedOf: '{n} of {shares} opened', leftInEnvelope: '{amount} left', envelopeEmptied: 'All opened',
  envelopeReturned: 'Expired; the rest went back', envelopeNotForYou: 'This envelope is not for you.',
  yourEnvelope: 'Your red envelope', envelopeFrom: 'From {name}',
  cardSentTo: 'Sent to {name}', cardReceivedFrom: 'Received from {name}', cardFromTo: '{from} to {to}',
  paymentCard: 'Payment of {amount}', envelopeCard: 'Red envelope of {amount}',
  payee: 'Pay whom', notEnoughShares: 'Each share needs at least {amount}.',
  errAmount: 'Enter an amount above zero.', errNoMoney: 'Not enough money in your wallet. Top up first.',
  errLimit: 'That is over your limit for one payment or one day.', errBlocked: 'You cannot pay this person.',
  errEnvelopeEmpty: 'Every share was taken.', errEnvelopeExpired: 'This envelope expired; its money went back.',
  errAlreadyClaimed: 'You opened this envelope already.', errCodeInvalid: 'This payment code is no longer valid.',
  errQr: 'That shop code is not valid.', errRequestExpired: 'This request expired.', errDecided: 'This request was already answered.',
  errNetwork: 'No data center answered. Check your connection and try again: you will not pay twice.',
};

export type Key = keyof typeof en;

const ko: Record<Key, string> = {
  appName: '슈퍼앱',
  login: '로그인', signup: '가입하기', logout: '로그아웃',
  loginTitle: '다시 오신 것을 환영해요', signupTitle: '계정 만들기',
  loginField: '이메일 또는 전화번호', password: '비밀번호', name: '이름',
  noAccount: '처음이신가요?', haveAccount: '이미 계정이 있으신가요?',
  passwordHint: '10자 이상.',
  chats: '채팅', friends: '친구', wallet: '지갑', pay: '결제', apps: '앱', settings: '설정',
  noChats: '아직 대화가 없어요. 친구 목록에서 시작해 보세요.',
  message: '메시지', send: '보내기', messages: '메시지 목록',
  pending: '보내는 중…', failed: '전송 실패', retry: '다시 보내기', discard: '삭제',
  typing: '{name}님이 입력 중…', someone: '누군가',
  read: '읽음', delivered: '전달됨', sent: '보냄',
  deleted: '삭제된 메시지입니다.', deleteForAll: '모두에게서 삭제', reply: '답장',
  replyingTo: '답장 대상', cancel: '취소', olderMessages: '이전 메시지 보기',
  back: '뒤로', unnamed: '이름 없음', newGroup: '새 그룹', groupName: '그룹 이름',
  create: '만들기', members: '멤버', you: '나',
  attach: '파일 첨부', download: '내려받기',
  moved: '{dc}(으)로 옮겼어요: 연결된 데이터 센터가 응답하지 않아요. 입력한 내용은 그대로 있어요.',
  reconnecting: '다시 연결하는 중…',
  profile: '프로필', statusMessage: '상태 메시지', save: '저장', saved: '저장했어요',
  devices: '기기', thisDevice: '이 기기', revoke: '이 기기에서 로그아웃', language: '언어',
  findFriend: '친구 찾기', findHint: '전화번호 또는 이메일', find: '찾기',
  addFriend: '친구 추가', accept: '수락', decline: '거절', requests: '받은 요청', sentRequests: '보낸 요청',
  block: '차단', unblock: '차단 해제', blocked: '차단한 사람', chat: '채팅', notFound: '그 전화번호나 이메일로 찾은 사람이 없어요.',
  noFriends: '아직 친구가 없어요. 전화번호나 이메일로 찾아보세요.',
  requestSent: '요청을 보냈어요',
  consentTitle: '{app}에서 슈퍼앱 계정을 사용하려고 해요',
  consentBy: '등록한 사람: {owner}', consentRedirect: '{host}(으)로 돌아갑니다.',
  allow: '허용', deny: '거부', scope_openid: '내가 누구인지 확인', scope_profile: '이름과 상태 메시지 보기',
  scope_email: '이메일 주소 보기', scope_phone: '전화번호 보기', scope_offline_access: '자리를 비워도 연결 유지',
  scope_friends: '친구 목록 보기', scope_pay: '결제 요청하기',
  connectedApps: '허용한 앱', noApps: '아직 허용한 앱이 없어요.', since: '{date}부터',
  loading: '불러오는 중…', error: '문제가 생겼어요.', notFoundPage: '없는 페이지예요.',
  home: '홈', comingSoon: '곧 만나요',
  details: '정보', rename: '이름 바꾸기', roleOwner: '방장', roleAdmin: '관리자', makeAdmin: '관리자로 지정', removeAdmin: '관리자 해제',
  remove: '내보내기', addMembers: '멤버 추가', leave: '그룹 나가기', leaveConfirm: '이 그룹에서 나갈까요? 더 이상 메시지를 받지 않아요.',
  chooseFriends: '친구 선택', connectedTo: '{dc}에 연결됨',
  photo: '사진', file: '파일: {name}',
  signedIn: '{date}에 로그인',
  consentDone: '이미 응답한 요청이에요. {app}(으)로 돌아가 다시 시작해 주세요.', consentExpired: '요청이 만료됐어요. {app}(으)로 돌아가 다시 시작해 주세요.',
  // Money: wallet, pay in a shop, payments and red envelopes in chats.
  available: '사용 가능', pendingMoney: '결제 대기', balance: '잔액',
  topUp: '충전', topUpTitle: '내 계좌에서 충전', topUpReview: '내 계좌에서 {amount}을 지갑에 충전할까요?',
  topUpDone: '{amount}을 충전했어요.', addAmount: '+{amount}',
  sendMoney: '송금', sendTo: '받는 사람', chooseFriend: '친구를 골라 주세요', noFriendsToPay: '친구를 추가하면 돈을 보낼 수 있어요.',
  amount: '금액', memo: '메모 (선택)', next: '다음', edit: '수정', close: '닫기', done: '확인',
  confirmSend: '{amount} 보내기', sendReview: '{name}님에게 {amount}을 보낼까요?', sentMoney: '{name}님에게 {amount}을 보냈어요.',
  working: '처리 중…', paying: '결제하는 중…',
  statement: '거래 내역', noStatement: '아직 거래가 없어요. 충전하고 시작해 보세요.', showMore: '더 보기',
  st_topup: '충전', st_sent: '결제', st_sentTo: '{name}님에게 보냄', st_received: '받음', st_receivedFrom: '{name}님에게서 받음',
  st_hold: '결제 대기', st_captured: '대기 금액 결제', st_released: '대기 금액 해제', st_envelope: '돈봉투',
  st_returned: '돈봉투 환불', st_refund: '환불', st_withdrawal: '내 계좌로 출금',
  payRequests: '결제 요청', payRequestFrom: '{app}에서 결제를 요청했어요', approve: '결제하기', approveReview: '{app}에 {amount}을 결제할까요?',
  expiresAt: '{time}까지', approved: '{app}에 {amount}을 결제했어요.', declined: '거절했어요.', anApp: '앱',
  payInShop: '매장에서 결제', myCode: '내 결제 코드', scan: 'QR 스캔',
  codeHelp: '매장에 이 코드를 보여 주세요. 한 번만 쓸 수 있고 저절로 새로 바뀌어요.',
  codeDigits: '결제 코드 숫자', codeQr: '결제 코드 QR', renewsIn: '{s}초 후 새 코드', renewCode: '새 코드 받기',
  codeLoading: '결제 코드를 받는 중…', codeHidden: '화면이 백그라운드에 있는 동안에는 코드를 숨겨요.',
  paidShop: '{amount} 결제 완료', newBalance: '잔액 {amount}',
  scanHelp: '카메라를 매장의 QR 코드에 비춰 주세요.', startCamera: '카메라 사용', stopCamera: '카메라 끄기',
  cameraVideo: '카메라', cameraUnavailable: '여기서는 카메라를 쓸 수 없어요. 매장 코드를 직접 입력해 주세요.',
  cameraDenied: '카메라 권한이 거부됐어요. 매장 코드를 직접 입력해 주세요.',
  shopCode: '매장 코드', shopCodeHint: '매장 QR 아래에 적힌 코드 (superapp:pay?m=… 형식)',
  continue: '계속', notShopQr: '슈퍼앱 매장 코드가 아니에요.',
  payShop: '{name}에 결제', shop: '매장 {id}', amountByShop: '금액은 매장에서 정했어요.', confirmPay: '{amount} 결제하기', confirmPayShop: '결제하기',
  paidTo: '{name}에 {amount}을 결제했어요.',
  payAction: '송금하거나 돈봉투 주기', money: '송금', redEnvelope: '돈봉투',
  envelopeShares: '나눌 사람 수', envelopeSplit: '나누는 방법', splitEqual: '똑같이', splitRandom: '랜덤',
  envelopeReview: '돈봉투에 {amount}, {shares}명 ({split})', confirmEnvelope: '돈봉투 보내기',
  envelopeDefault: '복 많이 받으세요!', sharesOf: '{shares}명 · {split}',
  openEnvelope: '열기', openEnvelopeFor: '{name}님의 돈봉투 열기', youGot: '{amount}을 받았어요',
  claimedOf: '{shares}명 중 {n}명이 열었어요', leftInEnvelope: '{amount} 남음', envelopeEmptied: '모두 열었어요',
  envelopeReturned: '기한이 지나 남은 돈은 돌려드렸어요', envelopeNotForYou: '나에게 온 돈봉투가 아니에요.',
  yourEnvelope: '내가 보낸 돈봉투', envelopeFrom: '{name}님이 보냄',
  cardSentTo: '{name}님에게 보냄', cardReceivedFrom: '{name}님에게서 받음', cardFromTo: '{from} → {to}',
  paymentCard: '{amount} 송금', envelopeCard: '{amount} 돈봉투',
  payee: '받는 사람', notEnoughShares: '한 사람당 {amount} 이상이어야 해요.',
  errAmount: '0보다 큰 금액을 입력해 주세요.', errNoMoney: '지갑 잔액이 부족해요. 먼저 충전해 주세요.',
  errLimit: '1회 또는 1일 한도를 넘었어요.', errBlocked: '이 사람에게는 보낼 수 없어요.',
  errEnvelopeEmpty: '이미 모두 가져갔어요.', errEnvelopeExpired: '기한이 지난 돈봉투예요. 돈은 보낸 사람에게 돌아갔어요.',
  errAlreadyClaimed: '이미 연 돈봉투예요.', errCodeInvalid: '더 이상 쓸 수 없는 결제 코드예요.',
  errQr: '올바른 매장 코드가 아니에요.', errRequestExpired: '기한이 지난 요청이에요.', errDecided: '이미 처리한 요청이에요.',
  errNetwork: '데이터 센터가 응답하지 않아요. 연결을 확인하고 다시 시도해 주세요. 두 번 결제되지 않아요.',
};

const dicts = { en, ko };
export type Lang = keyof typeof dicts;

function initial(): Lang {
  const saved = localStorage.getItem('superapp.lang');
  if (saved === 'en' || saved === 'ko') return saved;
  return navigator.language.toLowerCase().startsWith('ko') ? 'ko' : 'en';
}

export const lang = signal<Lang>(initial());
document.documentElement.lang = lang.value;

export function setLang(l: Lang) {
  lang.value = l;
  localStorage.setItem('superapp.lang', l);
  document.documentElement.lang = l;
}

export function t(key: Key, vars?: Record<string, string | number>): string {
  let s: string = dicts[lang.value][key] ?? en[key];
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return new Intl.DateTimeFormat(lang.value, sameDay ? { hour: 'numeric', minute: '2-digit' } : { month: 'short', day: 'numeric' }).format(d);
}

/** Formats an amount in minor units (KRW has none, USD has cents). */
export function formatMoney(amount: number, currency: string): string {
  // Korean apps write won as 12,000원, not ₩12,000.
  if (lang.value === 'ko' && currency === 'KRW') return `${new Intl.NumberFormat('ko').format(amount)}원`;
  const f = new Intl.NumberFormat(lang.value, { style: 'currency', currency });
  return f.format(amount / 10 ** minorDigits(currency));
}

/** How many minor-unit digits a currency has: 0 for KRW, 2 for USD. */
export function minorDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 0;
}
