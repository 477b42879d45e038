/**
 * Access tokens, as the transports get them from the app (docs/mobile.md, "Token refresh").
 */

/** The app's token source; `forceRefresh`: the server refused the last token, get a new one. */
export type GetToken = (options?: { readonly forceRefresh?: boolean }) => string | Promise<string>;

/**
 * The refresh-once rule shared by the HTTP and live transports: a token the server refused (401)
 * is replaced once through `getToken({ forceRefresh: true })`. Requests refused with the same token
 * at about the same time share one refresh, so a burst of 401s asks the app once.
 */
export class TokenSource {
  private inFlight: { readonly from: string; readonly to: Promise<string> } | null = null;
  private last: { readonly from: string; readonly to: string } | null = null;

  constructor(private readonly getToken: GetToken) {}

  current(): Promise<string> {
    return Promise.resolve().then(() => this.getToken());
  }

  /**
   * A fresh token in place of `refused`: the refresh under way for it, or the one it was already
   * refreshed to (a request refused just after another's refresh); else the app is asked.
   */
  refresh(refused: string): Promise<string> {
    if (this.inFlight?.from === refused) return this.inFlight.to;
    if (this.last?.from === refused && this.last.to !== refused) return Promise.resolve(this.last.to);
    const to = Promise.resolve().then(() => this.getToken({ forceRefresh: true }));
    const entry = { from: refused, to };
    this.inFlight = entry;
    // Settled before any caller resumes (registered first), so a later refusal sees `last`.
    const settle = () => {
      if (this.inFlight === entry) this.inFlight = null;
    };
    void to.then(
      (token) => {
        settle();
        this.last = { from: refused, to: token };
      },
      settle, // the caller hears the failure
    );
    return to;
  }
}
