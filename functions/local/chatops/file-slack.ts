import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SlackMessageRef } from '../../core/chatops/approval.js';
import type { SlackMessage } from '../../core/chatops/block-kit.js';
import type { SlackPort } from '../../core/chatops/incident-chat.js';

/**
 * Slack for the local twin without a workspace: every message is written as the Block Kit JSON
 * that chat.postMessage / chat.update / chat.postEphemeral would have received, numbered in the
 * order they were sent (paste one into Block Kit Builder to see it). Timestamps are made up, but
 * threads and updates refer to them as Slack's would.
 */
export class FileSlack implements SlackPort {
  private sequence = 0;
  private clock = Math.floor(Date.now() / 1000);

  constructor(
    /** e.g. <out>/slack */
    private readonly folder: string,
  ) {}

  private nextTs(): string {
    this.sequence += 1;
    return `${this.clock}.${String(this.sequence).padStart(6, '0')}`;
  }

  private async write(kind: string, body: Record<string, unknown>): Promise<string> {
    await mkdir(this.folder, { recursive: true });
    const file = join(this.folder, `${String(this.sequence).padStart(3, '0')}-${kind}.json`);
    await writeFile(file, `${JSON.stringify(body, null, 2)}\n`);
    return file;
  }

  async postMessage(
    channel: string,
    message: SlackMessage,
    options: { threadTs?: string; broadcast?: boolean } = {},
  ): Promise<SlackMessageRef> {
    const ts = this.nextTs();
    await this.write('chat.postMessage', {
      channel,
      ts,
      ...(options.threadTs ? { thread_ts: options.threadTs } : {}),
      ...(options.broadcast ? { reply_broadcast: true } : {}),
      text: message.text,
      blocks: message.blocks,
    });
    return { channel, ts };
  }

  async updateMessage(ref: SlackMessageRef, message: SlackMessage): Promise<void> {
    this.sequence += 1;
    await this.write('chat.update', {
      channel: ref.channel,
      ts: ref.ts,
      text: message.text,
      blocks: message.blocks,
    });
  }

  async postEphemeral(channel: string, userId: string, message: SlackMessage): Promise<void> {
    this.sequence += 1;
    await this.write('chat.postEphemeral', {
      channel,
      user: userId,
      text: message.text,
      blocks: message.blocks,
    });
  }

  async deleteMessage(ref: SlackMessageRef): Promise<void> {
    this.sequence += 1;
    await this.write('chat.delete', { channel: ref.channel, ts: ref.ts });
  }
}
