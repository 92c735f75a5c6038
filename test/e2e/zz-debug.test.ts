import { it } from 'vitest';
import { launchBrowser, NetworkRecord, openSession, signInAtDevLogin } from '../support/browser.js';
import { createTestDatabase } from '../support/databases.js';
import { startTestService } from '../support/service.js';
it('debug', async () => {
  const database = await createTestDatabase('sqlite');
  const svc = await startTestService({ database, authMode: 'dev', providers: [{ id: 'demo', type: 'oauth2', authorizationEndpoint: 'http://127.0.0.1:9/a', tokenEndpoint: 'http://127.0.0.1:9/t', clientId: 'x' }], integrations: [{ id: 'items', name: 'Items', provider: 'demo' }] });
  const browser = await launchBrowser();
  const network = new NetworkRecord();
  const { page } = await openSession(browser, network);
  await signInAtDevLogin(page, svc.url, 'bob');
  // fake a connection row
  const now = Date.now();
  await svc.service.ctx.store.db.insertInto('connections').values({ id: '11111111-1111-4111-8111-111111111111', user_id: 'bob', integration_id: 'items', status: 'active', scopes: '[]', refresh_failures: 0, version: 0, created_at: now, updated_at: now } as never).execute();
  await page.reload();
  page.on('console', (m) => console.log('console', m.text()));
  await page.getByTestId('disconnect-items').click();
  await new Promise((r) => setTimeout(r, 2000));
  await network.settle();
  console.log(page.url());
  console.log(network.responses.slice(-4).map((r) => `${r.status} ${r.url} ${r.body?.slice(0, 300)}`));
  console.log(svc.logs.slice(-6).join('\n'));
  await browser.close(); await svc.close(); await database.drop();
});
