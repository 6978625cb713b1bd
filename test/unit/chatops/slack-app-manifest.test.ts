import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SLASH_COMMAND } from '../../../functions/core/chatops/slash-command.js';

/**
 * The shipped Slack app manifest gives the app exactly what the code uses: the scopes behind every
 * Web API method SlackWebApi calls, interactivity for the buttons, and a bot token that does not
 * expire (it sits in Secrets Manager).
 */
const manifest = parse(readFileSync(new URL('../../../slack-app-manifest.yaml', import.meta.url), 'utf8'));
const source = readFileSync(new URL('../../../functions/adapters/slack-web-api.ts', import.meta.url), 'utf8');

const SCOPE_OF_METHOD: Record<string, string> = {
  'chat.postMessage': 'chat:write',
  'chat.update': 'chat:write',
  'chat.postEphemeral': 'chat:write',
  'chat.delete': 'chat:write',
  'usergroups.users.list': 'usergroups:read',
};

describe('slack-app-manifest.yaml', () => {
  it('asks for the scope of every Web API method the client calls, and no other', () => {
    const called = [...source.matchAll(/this\.call\('([a-zA-Z.]+)'/g)].map((match) => match[1] as string);
    expect(called.sort()).toEqual(Object.keys(SCOPE_OF_METHOD).sort());
    // Slash commands need `commands`; the breaker command is the only one.
    const needed = [...new Set([...called.map((method) => SCOPE_OF_METHOD[method]), 'commands'])].sort();
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual(needed);
    expect(manifest.oauth_config.scopes.user).toBeUndefined();
  });

  it('turns interactivity on, with HTTPS requests (no socket mode), and keeps the bot token from expiring', () => {
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    expect(manifest.settings.interactivity.request_url).toMatch(/^https:\/\/.+\.lambda-url\..+\.on\.aws\/$/);
    expect(manifest.settings.socket_mode_enabled).toBe(false);
    expect(manifest.settings.token_rotation_enabled).toBe(false);
    expect(manifest.features.bot_user.display_name).toBeTruthy();
    expect(manifest.display_information.description.length).toBeLessThanOrEqual(140);
  });

  it('sends the breaker slash command to the same endpoint as the buttons', () => {
    expect(manifest.features.slash_commands).toEqual([
      expect.objectContaining({ command: SLASH_COMMAND, url: manifest.settings.interactivity.request_url }),
    ]);
  });
});
