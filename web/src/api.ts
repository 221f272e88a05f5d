// The generated, typed API client (src/gen, from api/openapi.yaml), sent
// through the failover transport, with the session's access token.
import { client } from './gen/client.gen';
import type { ErrorDetail } from './gen/types.gen';
import { net } from './net';
import { session } from './session';

client.setConfig({
  // The transport replaces the origin with the preferred DC's.
  baseUrl: location.origin,
  fetch: net.fetch,
});

client.interceptors.request.use((req) => {
  const tok = session.token;
  if (tok && !req.headers.has('Authorization')) req.headers.set('Authorization', `Bearer ${tok}`);
  return req;
});

export * from './gen/sdk.gen';
export type * from './gen/types.gen';

/** An API error, with the server's code and message. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
  ) {
    super(message);
  }
}

type Result<T> = { data?: T; error?: unknown; response?: Response };

/**
 * Unwraps a generated call: its data, or an ApiError. An expired access
 * token is refreshed once and the call made again (same idempotency key:
 * the caller passes a function that reuses its options).
 */
export async function call<T>(fn: () => Promise<Result<T>>): Promise<T> {
  let r = await fn();
  if (r.response?.status === 401 && session.token) {
    if (await session.refresh()) r = await fn();
  }
  if (r.error !== undefined || !r.response || !r.response.ok) {
    const d = (r.error as { error?: ErrorDetail } | undefined)?.error;
    if (r.response?.status === 401 && session.token) session.expired();
    throw new ApiError(r.response?.status ?? 0, d?.code ?? 'network', d?.message ?? 'No data center answered. Check your connection.', d?.field);
  }
  return r.data as T;
}
