import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GithubApp } from '../../src/github/app.js';
import { GithubStandin } from '../support/github-standin.js';

/** Real Octokit against the GitHub stand-in on loopback: what GitHub itself would have issued. */
describe("a worker's token is its own", () => {
  let github: GithubStandin;
  let app: GithubApp;
  const permissions = { contents: 'read' as const, pull_requests: 'write' as const };
  before(async () => {
    github = new GithubStandin();
    await github.listen();
    github.installations.set('octo-org/widgets', 4242);
    app = new GithubApp({ appId: github.appId, privateKey: github.privateKey, baseUrl: github.url });
  });
  after(() => github.close());

  it('two workers of one repository starting at once get two tokens; revoking one leaves the other working', async () => {
    // @octokit/auth-app coalesces concurrent requests for the same repository and permissions into one.
    const [first, second] = await Promise.all([
      app.token('octo-org/widgets', 4242, permissions, { fresh: true }),
      app.token('octo-org/widgets', 4242, permissions, { fresh: true }),
    ]);
    assert.notEqual(first, second, 'each container gets a token of its own');
    assert.equal(github.tokens.get(first)?.installationId, 4242, 'GitHub issued it');
    await app.revoke(first);
    assert.equal(github.tokens.get(first)?.revoked, true);
    assert.equal(github.tokens.get(second)?.revoked, false, "one worker's exit does not end the other's token");
  });

  it("berth's own cached token is never a worker's (which its container's exit revokes)", async () => {
    const worker = await app.token('octo-org/widgets', 4242, permissions, { fresh: true });
    const own = await app.token('octo-org/widgets', 4242, permissions);
    assert.notEqual(own, worker);
    await app.revoke(worker);
    assert.equal(await app.token('octo-org/widgets', 4242, permissions), own, 'cached, and still valid');
    assert.equal(github.tokens.get(own)?.revoked, false);
  });
});
