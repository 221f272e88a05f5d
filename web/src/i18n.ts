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

export function formatMoney(amount: number, currency: string): string {
  return new Intl.NumberFormat(lang.value, { style: 'currency', currency }).format(amount);
}
