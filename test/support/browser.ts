/**
 * A real browser for the end-to-end suite: Debian's Chromium driven by playwright-core, one browser
 * per test file and a fresh context per test, with a record of everything the pages asked for and
 * got back (for the secrets scan), and a few accessibility facts a page can be checked against.
 */
import { type Browser, type BrowserContext, chromium, type Page, type Response } from 'playwright-core';

export type { Browser, BrowserContext, Page } from 'playwright-core';

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
    if (!isTextual(entry.headers['content-type'])) return;
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
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.setDefaultNavigationTimeout(10_000);
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
    const namedThings = [
      ...formControls,
      ...document.querySelectorAll('button, a[href]'),
    ].filter((el) => visible(el) || el.classList.contains('skip'));
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
