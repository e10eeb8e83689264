// The pending cell's editor: JupyterLab's own CodeMirror editor (from the application's
// IEditorServices), so the code is highlighted and edited exactly as in a notebook cell.
// Shift+Enter applies the edit and Escape hands focus back to the tree's controls; every other key
// belongs to the editor (JupyterLab's command-mode shortcuts stay out of it).

import { CodeEditor, IEditorServices } from '@jupyterlab/codeeditor';

export interface PendingEditor {
  /** The element to place in the tree; it carries data-testid="rlm-cell-editor". */
  readonly node: HTMLElement;
  getValue(): string;
  setValue(code: string): void;
  focus(): void;
  dispose(): void;
}

export interface EditorKeys {
  /** Shift+Enter: the same action as the "Apply edit" button. */
  apply(): void;
  /** Escape: focus leaves the editor; the callee decides where it goes. */
  leave(): void;
}

const LABEL = 'Code of the pending cell';

/** Shift+Enter and Escape, caught before the editor (capture phase) so neither inserts or is swallowed. */
function catchKeys(node: HTMLElement, keys: EditorKeys, blur: () => void): void {
  node.addEventListener('keydown', e => {
    if (e.key === 'Enter' && e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey) {
      e.preventDefault();
      e.stopPropagation();
      keys.apply();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      blur();
      keys.leave();
    }
  }, true);
}

/** A CodeMirror editor with Python highlighting when the application offers editor services;
 * a plain textarea otherwise (a front end without JupyterLab's editor). */
export function pendingEditor(services: IEditorServices | null, keys: EditorKeys): PendingEditor {
  const host = document.createElement('div');
  host.className = 'rlm-editor';
  host.dataset.testid = 'rlm-cell-editor';
  // Lumino skips shortcuts for keys typed under this attribute: "a", "b", "d d" are text here
  host.setAttribute('data-lm-suppress-shortcuts', '');
  if (!services) return textareaEditor(host, keys);
  const model = new CodeEditor.Model({ mimeType: 'text/x-python' });
  const editor = services.factoryService.newInlineEditor({
    host, model, config: { lineNumbers: true, lineWrap: false, autoClosingBrackets: false },
  });
  const content = host.querySelector('.cm-content');
  content?.setAttribute('aria-label', LABEL);
  catchKeys(host, keys, () => editor.blur());
  return {
    node: host,
    getValue: () => model.sharedModel.getSource(),
    setValue: code => model.sharedModel.setSource(code),
    focus: () => editor.focus(),
    dispose: () => {
      editor.dispose();
      model.dispose();
    },
  };
}

function textareaEditor(host: HTMLElement, keys: EditorKeys): PendingEditor {
  const area = document.createElement('textarea');
  area.spellcheck = false;
  area.rows = 6;
  area.setAttribute('aria-label', LABEL);
  host.append(area);
  catchKeys(host, keys, () => area.blur());
  return {
    node: host,
    getValue: () => area.value,
    setValue: code => {
      area.value = code;
      area.rows = Math.min(20, Math.max(4, code.split('\n').length + 1));
    },
    focus: () => area.focus(),
    dispose: () => undefined,
  };
}
