// Compiled by `tsc --noEmit`, never run: the declarations fit the way a page uses them.
import { AuthError, createAuth, stripAuthParams, type Auth, type LoginResult } from '@wechat-auth/web';

const auth: Auth = createAuth({ baseUrl: 'https://auth.example.com' });

async function signInPage(): Promise<void> {
  await auth.signInWithRedirect({ app: 'official_account', scope: 'snsapi_userinfo', returnTo: location.href });
}

async function returnPage(): Promise<void> {
  try {
    const result: LoginResult | null = await auth.handleRedirectCallback();
    const isNew: boolean | undefined = result?.new_user;
    void isNew;
  } catch (error) {
    if (error instanceof AuthError) {
      const code: string = error.code;
      const status: number = error.status;
      const detail: string | null = error.detail;
      void [code, status, detail];
    }
  }
  const res: Response = await auth.fetch('/api/v1/me', { headers: { accept: 'application/json' } });
  const id: string | undefined = auth.user?.id;
  void [res, id, stripAuthParams(location.href)];
}

async function computer(img: HTMLImageElement): Promise<void> {
  const controller = new AbortController();
  const result = await auth.qrLogin.start({
    onImage: (url) => {
      img.src = url;
    },
    onStatus: (status) => void status,
    signal: controller.signal,
  });
  const token: string = result.access_token;
  void token;
  const stop = auth.onAuthStateChange((event, session) => void [event, session?.expires_at]);
  stop();
  await auth.logout();
}

void [signInPage, returnPage, computer];
