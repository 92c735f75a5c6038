/**
 * A real browser for the end-to-end suite: Debian's Chromium driven by playwright-core, one browser
 * per test file and a fresh context per test, with a record of everything the pages asked for and
 * got back (for the secrets scan), and a few accessibility facts a page can be checked against.
 */
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Locator,
  type Page,
  type Response,
} from 'playwright-core';

export type { Browser, BrowserContext, Locator, Page } from 'playwright-core';

/**
 * Closes a browser context, giving up after `ms`: under heavy load Chromium can take a long time
 * to tear a context down, and a hung close must not hang the suite (the browser is closed anyway).
 */
export async function closeWithin(context: BrowserContext, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    context.close().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

export const chromiumPath = process.env.NUNQ_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Launches headless Chromium with no background traffic of its own (updates, sync, QUIC probes). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/** One HTTP response as the browser received it. */
export interface RecordedResponse {
  url: string;
  status: number;
  /** Every header, lower-cased names, including `set-cookie`. */
  headers: Record<string, string>;
  /** The body, when it is text and the browser kept it; undefined for redirects and binary bodies. */
  body?: string;
  /** Why a text body could not be read (e.g. the browser dropped it); undefined when read or not text. */
  bodyError?: string;
}

/** Everything the pages of one or more browser contexts requested and received. */
export class NetworkRecord {
  /** Every request URL, in order. */
  readonly requests: string[] = [];
  readonly responses: RecordedResponse[] = [];
  /** Every server-sent event the pages received (a stream's body is never complete to read). */
  readonly eventSourceMessages: Array<{ event: string; data: string }> = [];
  readonly #pending: Promise<void>[] = [];

  /** Starts recording every request and response of `context`'s pages. */
  attach(context: BrowserContext): void {
    context.on('request', (request) => {
      this.requests.push(request.url());
    });
    context.on('response', (response) => {
      this.#pending.push(this.#record(response));
    });
  }

  /**
   * Opens a page in an attached context that also records the server-sent events it receives
   * (through the DevTools protocol, before the page loads anything).
   */
  async openPage(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    cdp.on('Network.eventSourceMessageReceived', (message) => {
      this.eventSourceMessages.push({ event: message.eventName, data: message.data });
    });
    await cdp.send('Network.enable');
    page.setDefaultTimeout(10_000);
    page.setDefaultNavigationTimeout(10_000);
    return page;
  }

  /** Waits until every response seen so far is recorded (its body read). */
  async settle(): Promise<void> {
    while (this.#pending.length > 0) await Promise.all(this.#pending.splice(0));
  }

  /** The responses whose URL has `origin`. */
  from(origin: string): RecordedResponse[] {
    return this.responses.filter((r) => new URL(r.url).origin === origin);
  }

  async #record(response: Response): Promise<void> {
    const status = response.status();
    const entry: RecordedResponse = { url: response.url(), status, headers: {} };
    this.responses.push(entry);
    try {
      entry.headers = await response.allHeaders();
    } catch (error) {
      entry.bodyError = `headers unavailable: ${String(error)}`;
      return;
    }
    // Chromium keeps no body for redirects; the service tap (secrets-scan.ts) sees those.
    if (status >= 300 && status < 400) return;
    const type = entry.headers['content-type'];
    if (!isTextual(type) || /^text\/event-stream/i.test(type ?? '')) return;
    try {
      entry.body = await response.text();
    } catch (error) {
      entry.bodyError = String(error);
    }
  }
}

function isTextual(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  return /^(text\/|application\/(?:[\w.+-]*\+)?(?:json|xml|javascript|x-www-form-urlencoded))/i.test(
    contentType,
  );
}

/** A fresh browser context (no cookies) with one page, recorded into `network`. */
export async function openSession(
  browser: Browser,
  network: NetworkRecord,
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1100, height: 760 } });
  network.attach(context);
  const page = await network.openPage(context);
  return { context, page };
}

/** Accessibility facts of a page that a broken template would change. */
export interface AccessibilityFacts {
  /** The `lang` of `<html>` ('' when missing). */
  lang: string;
  /** How many `main` landmarks the page has. */
  mainLandmarks: number;
  /** Visible form controls, buttons and links without an accessible name, described. */
  unnamedControls: string[];
  /** How many visible form controls (not buttons) the page has, so "all are labelled" is not vacuous. */
  formControls: number;
  /** `data-testid="flash"`: absent, or whether it sits inside a polite/assertive live region. */
  flash: 'absent' | 'in-live-region' | 'not-in-live-region';
}

/**
 * Reads the accessibility facts from the DOM: a control is named by a non-empty `<label>`,
 * `aria-label`, `aria-labelledby` or `title`; a button or link also by its text.
 */
export function accessibilityFacts(page: Page): Promise<AccessibilityFacts> {
  return page.evaluate(() => {
    const text = (el: Element | null | undefined) => (el?.textContent ?? '').replace(/\s+/g, ' ').trim();
    const labelledBy = (el: Element) =>
      (el.getAttribute('aria-labelledby') ?? '')
        .split(/\s+/)
        .filter(Boolean)
        .map((id) => text(document.getElementById(id)))
        .join(' ')
        .trim();
    const hasName = (el: Element) => {
      if ((el.getAttribute('aria-label') ?? '').trim() !== '') return true;
      if (labelledBy(el) !== '') return true;
      if ((el.getAttribute('title') ?? '').trim() !== '') return true;
      const labels = (el as HTMLInputElement).labels;
      if (labels && [...labels].some((l) => text(l) !== '')) return true;
      const tag = el.tagName.toLowerCase();
      if (tag === 'button' || tag === 'a') return text(el) !== '';
      if (tag === 'input' && ['submit', 'button', 'reset'].includes((el as HTMLInputElement).type))
        return ((el as HTMLInputElement).value ?? '').trim() !== '';
      return false;
    };
    const visible = (el: Element) => {
      const box = (el as HTMLElement).getBoundingClientRect();
      const style = getComputedStyle(el);
      return style.display !== 'none' && style.visibility !== 'hidden' && box.width * box.height > 0;
    };
    const describe = (el: Element) =>
      `<${el.tagName.toLowerCase()}${[...el.attributes]
        .filter((a) => ['name', 'type', 'id', 'href', 'data-testid'].includes(a.name))
        .map((a) => ` ${a.name}="${a.value}"`)
        .join('')}>`;

    const formControls = [...document.querySelectorAll('input, select, textarea')].filter(
      (el) => (el as HTMLInputElement).type !== 'hidden',
    );
    // Skip links are off-screen until focused; they are still checked for a name.
    const namedThings = [...formControls, ...document.querySelectorAll('button, a[href]')].filter(
      (el) => visible(el) || el.classList.contains('skip'),
    );
    const flash = document.querySelector('[data-testid="flash"]');
    const liveRegion = flash?.closest(
      '[aria-live="polite"], [aria-live="assertive"], [role="status"], [role="alert"], [role="log"]',
    );
    const live = liveRegion != null && liveRegion.getAttribute('aria-live') !== 'off';
    return {
      lang: document.documentElement.getAttribute('lang') ?? '',
      mainLandmarks: document.querySelectorAll('main, [role="main"]').length,
      unnamedControls: namedThings.filter((el) => !hasName(el)).map(describe),
      formControls: formControls.filter(visible).length,
      flash: flash === null ? 'absent' : live ? 'in-live-region' : 'not-in-live-region',
    } satisfies AccessibilityFacts;
  });
}

/**
 * Opens `/` on the service in dev auth mode, follows it to `/dev/login`, types `userName` into the
 * form as a person would and submits; resolves on the Integrations page. Returns the sign-in
 * page's accessibility facts and HTML for the caller's checks.
 */
export async function signInAtDevLogin(
  page: Page,
  serviceUrl: string,
  userName: string,
): Promise<{ loginUrl: URL; loginFacts: AccessibilityFacts; loginHtml: string }> {
  await page.goto(`${serviceUrl}/`);
  const loginUrl = new URL(page.url());
  const loginFacts = await accessibilityFacts(page);
  const loginHtml = await page.content();
  await page.getByLabel('User name').fill(userName);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(`${serviceUrl}/`);
  return { loginUrl, loginFacts, loginHtml };
}

/**
 * Clicks a form's submit button (a plain HTML form post) and resolves with the status and body of
 * the service's answer to that POST, so a refused post fails with the service's reason instead of
 * a navigation timeout. A working post answers 303 See Other.
 */
export async function submitForm(
  page: Page,
  button: Locator,
  serviceUrl: string,
): Promise<{ status: number; detail: string }> {
  const origin = new URL(serviceUrl).origin;
  const answer = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).origin === origin,
  );
  await button.click();
  const response = await answer;
  const status = response.status();
  const detail = status >= 300 && status < 400 ? '' : await response.text().catch(() => '');
  return { status, detail: `POST ${new URL(response.url()).pathname} → ${status} ${detail}`.trim() };
}

/** A rendered page or an API answer kept for the secrets scan. */
export interface KeptText {
  where: string;
  text: string;
}

/** Keeps the rendered HTML of `page` (the DOM as the person saw it) in `into`. */
export async function keepPage(page: Page, into: KeptText[]): Promise<void> {
  into.push({ where: `page ${new URL(page.url()).pathname}`, text: await page.content() });
}

/**
 * GETs `url` with the browser context's own cookies (the person's session), keeps the answer's
 * headers and body in `into`, and returns its status and parsed JSON body.
 */
export async function getJsonWithSession(
  page: Page,
  url: string,
  into: KeptText[],
): Promise<{ status: number; json: unknown }> {
  const response = await page.context().request.get(url);
  const text = await response.text();
  const headers = Object.entries(response.headers())
    .map(([name, value]) => `${name}: ${value}`)
    .join('\n');
  into.push({ where: `api ${new URL(url).pathname}`, text: `${headers}\n${text}` });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status(), json };
}

/**
 * Goes through oidc-provider's own login and consent pages (devInteractions) as a person does:
 * types `login` and a password on its sign-in page, clicks Continue on its consent page; stops
 * when the page has left `issuer`'s origin. Returns which pages it went through.
 */
export async function throughOidcProvider(page: Page, issuer: string, login: string): Promise<string[]> {
  const origin = new URL(issuer).origin;
  const shown: string[] = [];
  for (let step = 0; step < 4; step += 1) {
    await page.waitForLoadState('load');
    const here = page.url();
    if (new URL(here).origin !== origin) return shown;
    if ((await page.locator('input[name="login"]').count()) > 0) {
      shown.push('login');
      await page.locator('input[name="login"]').fill(login);
      await page.locator('input[name="password"]').fill('any password at all');
      await page.getByRole('button', { name: 'Sign-in' }).click();
    } else {
      shown.push('consent');
      await page.getByRole('button', { name: 'Continue' }).click();
    }
    await page.waitForURL((url) => url.href !== here);
  }
  throw new Error(`still at the provider after ${shown.join(', ')}: ${page.url()}`);
}
