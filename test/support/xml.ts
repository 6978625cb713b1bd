/**
 * A strict parser for the XML subset the project writes (declaration, comments, elements,
 * attributes, text, the five predefined entities and numeric references). It throws, with the
 * offset, on anything not well-formed: unbalanced or mismatched tags, unquoted or duplicate
 * attributes, a raw `<` or `&`, text after the root.
 */
export interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_:][-A-Za-z0-9_.:]*/;
const ENTITY = /^&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/;

export function parseXml(source: string): XmlElement {
  let at = 0;
  const fail = (message: string): never => {
    throw new Error(`XML not well-formed at offset ${at}: ${message}`);
  };
  const skipSpace = () => {
    while (at < source.length && /\s/.test(source[at] ?? '')) at++;
  };
  const skipMisc = () => {
    for (;;) {
      skipSpace();
      if (source.startsWith('<!--', at)) {
        const end = source.indexOf('-->', at + 4);
        if (end === -1) fail('unterminated comment');
        at = end + 3;
      } else return;
    }
  };
  const decode = (raw: string, where: string): string => {
    let out = '';
    for (let index = 0; index < raw.length; ) {
      const char = raw[index];
      if (char === '<') fail(`raw '<' in ${where}`);
      if (char === '&') {
        const match = ENTITY.exec(raw.slice(index));
        if (!match) fail(`bad entity in ${where}: ${raw.slice(index, index + 10)}`);
        out +=
          (
            { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'" } as Record<string, string>
          )[match?.[0] ?? ''] ?? '?';
        index += match?.[0].length ?? 1;
      } else {
        out += char;
        index++;
      }
    }
    return out;
  };
  const name = (): string => {
    const match = NAME.exec(source.slice(at));
    if (!match) return fail('expected a name');
    at += match[0].length;
    return match[0];
  };

  const element = (): XmlElement => {
    if (source[at] !== '<') fail('expected <');
    at++;
    const tag = name();
    const attributes: Record<string, string> = {};
    for (;;) {
      const before = at;
      skipSpace();
      if (source.startsWith('/>', at)) {
        at += 2;
        return { name: tag, attributes, children: [], text: '' };
      }
      if (source[at] === '>') {
        at++;
        break;
      }
      if (at === before) fail(`expected whitespace before an attribute of <${tag}>`);
      const attribute = name();
      if (attribute in attributes) fail(`duplicate attribute ${attribute} on <${tag}>`);
      skipSpace();
      if (source[at] !== '=') fail(`attribute ${attribute} has no value`);
      at++;
      skipSpace();
      const quote = source[at];
      if (quote !== '"' && quote !== "'") fail(`attribute ${attribute} is not quoted`);
      const end = source.indexOf(quote ?? '"', at + 1);
      if (end === -1) fail(`attribute ${attribute} is not terminated`);
      attributes[attribute] = decode(source.slice(at + 1, end), `attribute ${attribute}`);
      at = end + 1;
    }
    const node: XmlElement = { name: tag, attributes, children: [], text: '' };
    for (;;) {
      if (at >= source.length) fail(`<${tag}> is never closed`);
      if (source.startsWith('</', at)) {
        at += 2;
        const closing = name();
        if (closing !== tag) fail(`</${closing}> closes <${tag}>`);
        skipSpace();
        if (source[at] !== '>') fail(`bad closing tag </${closing}`);
        at++;
        return node;
      }
      if (source.startsWith('<!--', at)) {
        skipMisc();
        continue;
      }
      if (source[at] === '<') {
        node.children.push(element());
        continue;
      }
      const next = source.indexOf('<', at);
      const end = next === -1 ? source.length : next;
      node.text += decode(source.slice(at, end), `text of <${tag}>`);
      at = end;
    }
  };

  if (source.startsWith('<?xml', at)) {
    const end = source.indexOf('?>', at);
    if (end === -1) fail('unterminated XML declaration');
    at = end + 2;
  }
  skipMisc();
  const root = element();
  skipMisc();
  if (at !== source.length) fail('content after the root element');
  return root;
}

export function findAll(root: XmlElement, predicate: (element: XmlElement) => boolean): XmlElement[] {
  const found: XmlElement[] = [];
  const visit = (element: XmlElement) => {
    if (predicate(element)) found.push(element);
    for (const child of element.children) visit(child);
  };
  visit(root);
  return found;
}
