// Compiled by `tsc --noEmit`, never run: the declarations fit the way a mini program uses them.
import { AuthError, createAuth, type Auth, type LoginResult, type PhoneNumber, type WxLike } from '..';

declare const wx: WxLike;

const auth: Auth = createAuth({ baseUrl: 'https://auth.example.com', wx, storageKey: 'auth' });

async function page(): Promise<void> {
  const result: LoginResult = await auth.login();
  const isNew: boolean = result.new_user;
  const id: string | undefined = auth.user?.id;

  const res = await auth.request<{ id: string }>({ url: '/api/v1/me' });
  const status: number = res.statusCode;
  const userId: string = res.data.id;

  const phone: PhoneNumber | null = await auth.phoneNumber({ detail: { code: 'abc' } });
  const shown: string | undefined = phone?.phone_number;

  try {
    await auth.qrLogin.scan('scene');
    await auth.qrLogin.confirm('id');
  } catch (error) {
    if (error instanceof AuthError) {
      const code: string = error.code;
      const httpStatus: number = error.status;
      const detail: string | null = error.detail;
      void [code, httpStatus, detail];
    }
  }
  const stop = auth.onAuthStateChange((event, session) => void [event, session?.user.id]);
  stop();
  await auth.logout();
  void [isNew, id, status, userId, shown];
}

void page;
