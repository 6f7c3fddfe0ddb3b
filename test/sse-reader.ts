/** Reads a Server-Sent Events stream with fetch (Node has no EventSource), keeping every event. */
export interface SseEvent {
  id?: string;
  data: string;
}

export class SseReader {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status = 0;
  headers: Headers | null = null;
  private readonly abort = new AbortController();
  ended = false;

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const r = new SseReader();
    const res = await fetch(url, { headers, signal: r.abort.signal });
    r.status = res.status;
    r.headers = res.headers;
    if (res.status !== 200 || !res.body) {
      r.events.push({ data: await res.text() });
      r.ended = true;
      return r;
    }
    void r.pump(res.body);
    return r;
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    let cur: { id?: string; data: string[] } = { data: [] };
    try {
      const reader = body.getReader();
      for (;;) {
        const { value: chunk, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line === '') {
            if (cur.data.length > 0) this.events.push({ ...(cur.id !== undefined ? { id: cur.id } : {}), data: cur.data.join('\n') });
            cur = { data: [] };
          } else if (line.startsWith(':')) this.comments.push(line);
          else if (line.startsWith('id: ')) cur.id = line.slice(4);
          else if (line.startsWith('data: ')) cur.data.push(line.slice(6));
        }
      }
    } catch {
      /* aborted */
    }
    this.ended = true;
  }

  frames(): { t: string; [k: string]: unknown }[] {
    return this.events.map((e) => JSON.parse(e.data) as { t: string });
  }

  close(): void {
    this.abort.abort();
  }
}
