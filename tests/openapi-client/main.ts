// A small client program against the types generated from the served OpenAPI document.
// It only has to type-check (`tsc --noEmit`): if the document misdescribes an answer,
// this program either stops compiling or its `@ts-expect-error` lines become unused.
import type { components, paths } from "./generated/api";

type User = components["schemas"]["User"];
type LoginRequest = paths["/api/v1/auth/login"]["post"]["requestBody"]["content"]["application/json; charset=utf-8"];
type LoginResponse =
  paths["/api/v1/auth/login"]["post"]["responses"][200]["content"]["application/json; charset=utf-8"];
type Problem = components["schemas"]["Problem"];
type UserInfo = components["schemas"]["UserInfoResponse"];

// The fields /me answers as null must be typed as nullable.
const fresh: Pick<User, "unionid" | "phone_number" | "nickname" | "avatar_url"> = {
  unionid: null,
  phone_number: null,
  nickname: null,
  avatar_url: null,
};
const anonymous: UserInfo["nickname"] = null;

// Required fields stay required.
// @ts-expect-error a user always has an id
const withoutId: User = { openid: "o" };

export async function login(base: string, code: string): Promise<LoginResponse | Problem> {
  const body: LoginRequest = { code };
  const response = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return (await response.json()) as LoginResponse | Problem;
}

export function greeting(answer: LoginResponse | Problem): string {
  if ("code" in answer) {
    const code: Problem["code"] = answer.code;
    return `login failed: ${code}`;
  }
  const user: User = answer.user;
  // The compiler insists on the null check: nickname may be null.
  const name: string = user.nickname ?? "friend";
  const expiresIn: number = answer.expires_in;
  return `hello ${name}, your token lasts ${expiresIn} s`;
}

export const unused = { fresh, anonymous, withoutId };
