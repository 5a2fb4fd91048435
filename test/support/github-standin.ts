import { execFileSync, spawn } from 'node:child_process';
import { createPublicKey, createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { sign } from '@octokit/webhooks-methods';
import type { HookDelivery as ListedDelivery } from '../../src/consumer/delivery-recovery.js';
import { join } from 'node:path';

/** One request the stand-in answered, as GitHub would have seen it. */
export interface StandinCall {
  method: string;
  path: string;
  query: URLSearchParams;
  body: any;
  /** How the caller authenticated: the App's JWT, an installation token that is valid for this call, or not. */
  auth: 'jwt' | 'token' | 'none' | 'refused';
  token?: string;
  status: number;
  at: number;
  /** The caller's address: berth on loopback, or a worker on its network. */
  from: string;
}

export interface IssuedToken {
  token: string;
  installationId: number;
  repositories: string[];
  permissions: Record<string, string> | null;
  revoked: boolean;
}

export interface CheckRun {
  id: number;
  repo: string;
  head_sha: string;
  name: string;
  external_id: string;
  app: { id: number };
  status: string;
  conclusion: string | null;
  output: { title: string; summary: string; text?: string };
  actions: unknown[];
  details_url?: string;
  /** Every body written to it, in order: POST then each PATCH. */
  history: Array<Record<string, any>>;
}

export interface PullFixture {
  number: number;
  headSha: string;
  baseRef: string;
  headRepo: string | null;
}

/** One attempt at a webhook delivery as GitHub lists it, plus the payload it redelivers. */
export interface HookDelivery extends ListedDelivery {
  payload: unknown;
}

interface Failure {
  match: RegExp;
  status: number;
  headers: Record<string, string>;
  remaining: number;
}

/**
 * A stand-in for GitHub: the REST endpoints berth and its example agent use, and repositories over
 * git's smart HTTP protocol through Debian's `git http-backend`. It checks the App JWT for real,
 * issues installation tokens and checks one on every call (repository scope, revocation), and
 * records every call, so tests assert on what GitHub would have seen.
 */
export class GithubStandin {
  readonly appId = '12345';
  readonly privateKey: string;
  private readonly publicKey: string;
  readonly calls: StandinCall[] = [];
  readonly tokens = new Map<string, IssuedToken>();
  readonly checkRuns: CheckRun[] = [];
  readonly comments: Array<{
    id: number;
    repo: string;
    issue: number;
    body: string;
    created_at: string;
    user?: { login: string };
    performed_via_github_app?: { id: number } | null;
  }> = [];
  readonly reactions: Array<{ repo: string; commentId: number; content: string }> = [];
  readonly reviews: Array<{ id: number; repo: string; pull: number; body: any }> = [];
  readonly installations = new Map<string, number>();
  /** `owner/name\nlogin` (lower case) → the role GitHub reports; anyone else: `defaultRole`. */
  readonly roles = new Map<string, string>();
  defaultRole = 'none';
  readonly pulls = new Map<string, PullFixture>();
  private readonly failures: Failure[] = [];
  /** The App's webhook deliveries, oldest first; redeliveries append. */
  readonly hookDeliveries: HookDelivery[] = [];
  /** Where redeliveries go (berth's URL) and the secret they are signed with: set by `redeliverTo`. */
  private setRedeliveryTarget!: (target: { url: string; secret: string }) => void;
  private readonly redeliveryTarget = new Promise<{ url: string; secret: string }>((resolve) => (this.setRedeliveryTarget = resolve));
  readonly redeliveryRequests: number[] = [];
  private readonly server: Server;
  readonly gitRoot: string;
  url = '';
  private nextId = 1000;

  constructor() {
    const keys = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    this.privateKey = keys.privateKey;
    this.publicKey = keys.publicKey;
    this.gitRoot = mkdtempSync(join(tmpdir(), 'berth-git-'));
    this.server = createServer((request, response) => void this.handle(request, response));
  }

  /** Listens on `host` (e.g. the gateway of a Docker network the test made, so workers reach it). */
  async listen(host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, host, resolve));
    this.url = `http://${host}:${(this.server.address() as { port: number }).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.gitRoot, { recursive: true, force: true });
  }

  /** The next `times` calls whose "METHOD path" matches answer `status` with `headers`. */
  fail(match: RegExp, status: number, times: number, headers: Record<string, string> = {}): void {
    this.failures.push({ match, status, headers, remaining: times });
  }

  /** The role GitHub reports for `login` on `repo` (admin, maintain, write, triage, read, none). */
  setRole(repo: string, login: string, role: string): void {
    this.roles.set(`${repo.toLowerCase()}\n${login.toLowerCase()}`, role);
  }

  callsTo(method: string, path: RegExp): StandinCall[] {
    return this.calls.filter((c) => c.method === method && path.test(c.path) && c.status < 400);
  }

  /**
   * A bare repository `owner/name` served over smart HTTP: `main` with a few commits, and a pull
   * request `number` whose head adds a file with a TODO (its history forks from main two commits
   * back, and main moves on after, so merge base and diff are real).
   */
  makeRepository(repo: string, installationId: number, pull: { number: number; baseRef?: string }): PullFixture {
    this.installations.set(repo.toLowerCase(), installationId);
    const bare = join(this.gitRoot, `${repo}.git`);
    const work = mkdtempSync(join(tmpdir(), 'berth-work-'));
    const git = (cwd: string, ...args: string[]) =>
      execFileSync('git', args, {
        cwd,
        encoding: 'utf8',
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 'Octo',
          GIT_AUTHOR_EMAIL: 'octo@example.test',
          GIT_COMMITTER_NAME: 'Octo',
          GIT_COMMITTER_EMAIL: 'octo@example.test',
        },
      }).trim();
    const base = pull.baseRef ?? 'main';
    execFileSync('git', ['init', '-q', '--bare', '-b', base, bare]);
    execFileSync('git', ['-C', bare, 'config', 'uploadpack.allowAnySHA1InWant', 'true']);
    git(work, 'init', '-q', '-b', base);
    for (let i = 1; i <= 5; i++) {
      writeFileSync(join(work, 'README.md'), `# ${repo}\n\nrevision ${i}\n`);
      git(work, 'add', '.');
      git(work, 'commit', '-q', '-m', `main ${i}`);
    }
    git(work, 'checkout', '-q', '-b', 'feature', 'HEAD~2');
    writeFileSync(join(work, 'client.js'), 'export function call() {\n  // TODO: retry on 502\n  return fetch("/x");\n}\n');
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'add client');
    writeFileSync(join(work, 'notes.md'), 'plain notes\n');
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'add notes');
    const headSha = git(work, 'rev-parse', 'HEAD');
    git(work, 'checkout', '-q', base);
    writeFileSync(join(work, 'CHANGELOG.md'), 'later on main\n');
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'main moves on');
    git(work, 'push', '-q', bare, `${base}:refs/heads/${base}`, `feature:refs/pull/${pull.number}/head`);
    rmSync(work, { recursive: true, force: true });
    const fixture = { number: pull.number, headSha, baseRef: base, headRepo: repo };
    this.pulls.set(`${repo.toLowerCase()}#${pull.number}`, fixture);
    return fixture;
  }

  /** Another pull request on `repo` (e.g. one whose head is a fork); refs/pull/<n>/head points at its head. */
  addPull(repo: string, fixture: PullFixture): void {
    this.pulls.set(`${repo.toLowerCase()}#${fixture.number}`, fixture);
    execFileSync('git', ['-C', join(this.gitRoot, `${repo}.git`), 'update-ref', `refs/pull/${fixture.number}/head`, fixture.headSha]);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://standin');
    const path = url.pathname;
    if (/\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/.test(path)) return this.git(request, response, url);
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: any = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    const call: StandinCall = {
      method: request.method ?? 'GET',
      path,
      query: url.searchParams,
      body,
      auth: 'none',
      status: 0,
      at: Date.now(),
      from: request.socket.remoteAddress ?? '',
    };
    this.calls.push(call);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(payload === undefined ? '' : JSON.stringify(payload));
    };
    const failure = this.failures.find((f) => f.remaining > 0 && f.match.test(`${call.method} ${path}`));
    if (failure) {
      failure.remaining--;
      return send(failure.status, { message: failure.status === 429 || failure.status === 403 ? 'API rate limit exceeded' : 'Server Error' }, failure.headers);
    }

    const authorization = request.headers.authorization ?? '';
    if (/^bearer ey/i.test(authorization)) {
      if (!this.validJwt(authorization.slice(7))) return send(401, { message: 'A JSON web token could not be decoded' });
      call.auth = 'jwt';
      return this.appRoute(call, send);
    }
    const token = authorization.replace(/^(token|bearer) /i, '');
    const issued = this.tokens.get(token);
    const repoMatch = /^\/repos\/([^/]+)\/([^/]+)\//.exec(path);
    call.token = token || undefined;
    if (!issued || issued.revoked) {
      call.auth = token ? 'refused' : 'none';
      return send(401, { message: 'Bad credentials' });
    }
    if (repoMatch && issued.repositories.length > 0 && !issued.repositories.includes(repoMatch[2]!)) {
      call.auth = 'refused';
      return send(404, { message: 'Not Found' });
    }
    call.auth = 'token';
    return this.repoRoute(call, issued, send);
  }

  private validJwt(jwt: string): boolean {
    const [header, payload, signature] = jwt.split('.');
    if (!header || !payload || !signature) return false;
    const verifier = createVerify('RSA-SHA256');
    verifier.update(`${header}.${payload}`);
    if (!verifier.verify(createPublicKey(this.publicKey), Buffer.from(signature, 'base64url'))) return false;
    return JSON.parse(Buffer.from(payload, 'base64url').toString()).iss === this.appId;
  }

  /** Records a delivery attempt GitHub made in the past (e.g. one that failed while berth was down). */
  addHookDelivery(delivery: Omit<HookDelivery, 'id' | 'status'>): HookDelivery {
    const entry = {
      ...delivery,
      id: this.nextId++,
      status: delivery.status_code >= 200 && delivery.status_code < 300 ? 'OK' : `Invalid HTTP Response: ${delivery.status_code}`,
    };
    this.hookDeliveries.push(entry);
    return entry;
  }

  private appRoute(call: StandinCall, send: (status: number, payload: unknown, headers?: Record<string, string>) => void): void {
    if (call.method === 'GET' && call.path === '/app/hook/deliveries') {
      const perPage = Number(call.query.get('per_page') ?? 30);
      const start = Number(call.query.get('cursor') ?? 0);
      const newestFirst = [...this.hookDeliveries].reverse();
      const page = newestFirst.slice(start, start + perPage).map(({ payload: _, ...rest }) => rest);
      const next: Record<string, string> =
        start + perPage < newestFirst.length ? { link: `<${this.url}/app/hook/deliveries?per_page=${perPage}&cursor=${start + perPage}>; rel="next"` } : {};
      return send(200, page, next);
    }
    const attempt = /^\/app\/hook\/deliveries\/(\d+)\/attempts$/.exec(call.path);
    if (call.method === 'POST' && attempt) {
      const original = this.hookDeliveries.find((d) => d.id === Number(attempt[1]));
      if (!original) return send(404, { message: 'Not Found' });
      this.redeliveryRequests.push(original.id);
      send(202, {});
      void this.redeliver(original);
      return;
    }
    const tokenRoute = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(call.path);
    if (call.method === 'POST' && tokenRoute) {
      const token = `ghs_${randomBytes(18).toString('hex')}`;
      const issued: IssuedToken = {
        token,
        installationId: Number(tokenRoute[1]),
        repositories: call.body?.repositories ?? [],
        permissions: call.body?.permissions ?? null,
        revoked: false,
      };
      this.tokens.set(token, issued);
      return send(201, {
        token,
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
        permissions: issued.permissions ?? { contents: 'write', pull_requests: 'write', checks: 'write', issues: 'write' },
        repository_selection: 'selected',
      });
    }
    const installation = /^\/repos\/([^/]+\/[^/]+)\/installation$/.exec(call.path);
    if (call.method === 'GET' && installation) {
      const id = this.installations.get(installation[1]!.toLowerCase());
      return id === undefined ? send(404, { message: 'Not Found' }) : send(200, { id });
    }
    send(404, { message: 'Not Found' });
  }

  private repoRoute(call: StandinCall, issued: IssuedToken, send: (status: number, payload: unknown, headers?: Record<string, string>) => void): void {
    const { method, path, body } = call;
    if (method === 'DELETE' && path === '/installation/token') {
      issued.revoked = true;
      return send(204, undefined);
    }
    const m = /^\/repos\/([^/]+\/[^/]+)\/(.*)$/.exec(path);
    if (!m) return send(404, { message: 'Not Found' });
    const repo = m[1]!;
    const rest = m[2]!;
    let r: RegExpExecArray | null;
    if (method === 'GET' && (r = /^collaborators\/([^/]+)\/permission$/.exec(rest))) {
      const role = this.roles.get(`${repo.toLowerCase()}\n${decodeURIComponent(r[1]!).toLowerCase()}`) ?? this.defaultRole;
      // GitHub's legacy `permission` reads maintain as write and triage as read.
      const legacy = ({ admin: 'admin', maintain: 'write', write: 'write', triage: 'read', read: 'read' } as Record<string, string>)[role] ?? 'none';
      return send(200, { permission: legacy, role_name: role, user: { login: decodeURIComponent(r[1]!) } });
    }
    if (method === 'GET' && (r = /^pulls\/(\d+)$/.exec(rest))) {
      const pull = this.pulls.get(`${repo.toLowerCase()}#${r[1]}`);
      if (!pull) return send(404, { message: 'Not Found' });
      return send(200, {
        number: pull.number,
        head: { sha: pull.headSha, ref: 'feature', repo: pull.headRepo ? { full_name: pull.headRepo } : null },
        base: { ref: pull.baseRef, repo: { full_name: repo } },
      });
    }
    if (method === 'POST' && rest === 'check-runs') {
      const run: CheckRun = {
        id: this.nextId++,
        repo,
        head_sha: body.head_sha,
        name: body.name,
        external_id: body.external_id,
        app: { id: Number(this.appId) },
        status: body.status,
        conclusion: body.conclusion ?? null,
        output: body.output,
        actions: body.actions ?? [],
        details_url: body.details_url,
        history: [body],
      };
      this.checkRuns.push(run);
      return send(201, run);
    }
    if (method === 'PATCH' && (r = /^check-runs\/(\d+)$/.exec(rest))) {
      const run = this.checkRuns.find((c) => c.id === Number(r![1]) && c.repo === repo);
      if (!run) return send(404, { message: 'Not Found' });
      Object.assign(run, {
        status: body.status ?? run.status,
        conclusion: body.conclusion ?? (body.status && body.status !== 'completed' ? null : run.conclusion),
        output: body.output ?? run.output,
        actions: body.actions ?? run.actions,
      });
      run.history.push(body);
      return send(200, run);
    }
    if (method === 'GET' && (r = /^commits\/([^/]+)\/check-runs$/.exec(rest))) {
      const name = call.query.get('check_name');
      const runs = this.checkRuns.filter((c) => c.repo === repo && c.head_sha === r![1] && (!name || c.name === name));
      return send(200, { total_count: runs.length, check_runs: runs });
    }
    if (method === 'POST' && (r = /^issues\/comments\/(\d+)\/reactions$/.exec(rest))) {
      const existing = this.reactions.find((x) => x.repo === repo && x.commentId === Number(r![1]) && x.content === body.content);
      if (existing) return send(200, { id: 1, content: body.content });
      this.reactions.push({ repo, commentId: Number(r[1]), content: body.content });
      return send(201, { id: this.nextId++, content: body.content });
    }
    if ((r = /^issues\/(\d+)\/comments$/.exec(rest))) {
      if (method === 'POST') {
        // GitHub names the App on a comment made with one of its installation tokens.
        const comment = {
          id: this.nextId++,
          repo,
          issue: Number(r[1]),
          body: body.body,
          created_at: new Date().toISOString(),
          user: { login: 'berth-test[bot]' },
          performed_via_github_app: { id: Number(this.appId) } as { id: number } | null,
        };
        this.comments.push(comment);
        return send(201, comment);
      }
      const since = call.query.get('since');
      return send(
        200,
        this.comments.filter((c) => c.repo === repo && c.issue === Number(r![1]) && (!since || c.created_at >= since)),
      );
    }
    if (method === 'POST' && (r = /^pulls\/(\d+)\/reviews$/.exec(rest))) {
      const review = { id: this.nextId++, repo, pull: Number(r[1]), body };
      this.reviews.push(review);
      return send(200, { id: review.id });
    }
    send(404, { message: 'Not Found' });
  }

  /** Where redeliveries go from now on; one asked for before this waits for it. */
  redeliverTo(url: string, secret: string): void {
    this.setRedeliveryTarget({ url, secret });
  }

  /** Delivers `original` again, signed, to berth's webhook route, and lists that attempt too. */
  private async redeliver(original: HookDelivery): Promise<void> {
    // A berth asking at its start may ask before the test has said where it listens.
    const target = await this.redeliveryTarget;
    const body = JSON.stringify(original.payload);
    const response = await fetch(`${target.url}/webhooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': original.event,
        'x-github-delivery': original.guid,
        'x-hub-signature-256': await sign(target.secret, body),
        'user-agent': 'GitHub-Hookshot/standin',
      },
      body,
    }).catch(() => null);
    this.addHookDelivery({
      guid: original.guid,
      delivered_at: new Date().toISOString(),
      redelivery: true,
      status_code: response?.status ?? 0,
      event: original.event,
      action: original.action,
      payload: original.payload,
    });
  }

  /** git smart HTTP through `git http-backend` (CGI), behind the same token check as the API. */
  private git(request: IncomingMessage, response: ServerResponse, url: URL): void {
    const call: StandinCall = {
      method: request.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      body: null,
      auth: 'none',
      status: 0,
      at: Date.now(),
      from: request.socket.remoteAddress ?? '',
    };
    this.calls.push(call);
    const deny = (status: number, headers: Record<string, string> = {}) => {
      call.status = status;
      request.resume();
      response
        .writeHead(status, { 'content-type': 'text/plain', ...headers })
        .end(status === 401 ? 'Authentication required\n' : status === 404 ? 'Repository not found\n' : 'Service Unavailable\n');
    };
    const failure = this.failures.find((f) => f.remaining > 0 && f.match.test(`${call.method} ${url.pathname}`));
    if (failure) {
      failure.remaining--;
      return deny(failure.status);
    }
    const basic = /^basic (.+)$/i.exec(request.headers.authorization ?? '');
    if (!basic) return deny(401, { 'www-authenticate': 'Basic realm="GitHub"' });
    const [user, token = ''] = Buffer.from(basic[1]!, 'base64').toString().split(':');
    const issued = this.tokens.get(token);
    call.token = token;
    const repo = /^\/([^/]+\/[^/]+)\.git\//.exec(url.pathname)?.[1] ?? '';
    if (user !== 'x-access-token' || !issued || issued.revoked) {
      call.auth = 'refused';
      return deny(401, { 'www-authenticate': 'Basic realm="GitHub"' });
    }
    if (issued.repositories.length > 0 && !issued.repositories.includes(repo.split('/')[1]!)) {
      call.auth = 'refused';
      return deny(404);
    }
    call.auth = 'token';
    const backend = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: this.gitRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: request.method,
        CONTENT_TYPE: request.headers['content-type'] ?? '',
        ...(request.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(request.headers['content-encoding']) } : {}),
        ...(request.headers['git-protocol'] ? { GIT_PROTOCOL: String(request.headers['git-protocol']) } : {}),
        REMOTE_USER: 'x-access-token',
        REMOTE_ADDR: request.socket.remoteAddress ?? '',
      },
    });
    request.pipe(backend.stdin);
    let head = Buffer.alloc(0);
    let started = false;
    backend.stdout.on('data', (chunk: Buffer) => {
      if (started) {
        response.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else headers[name] = value;
      }
      call.status = status;
      response.writeHead(status, headers);
      started = true;
      response.write(head.subarray(end + 4));
    });
    backend.on('close', () => response.end());
  }
}
