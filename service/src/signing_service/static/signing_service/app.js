// Copy buttons: <button data-copy="ID"> copies the value (or text) of the element with that id.
// Kept in a static file because the Content-Security-Policy forbids inline script.
"use strict";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  const text = "value" in source ? source.value : source.textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    source.select?.();
    document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});

// The Authorize page: the API key boxes apply only under "Only the API keys chosen below", so
// they are greyed out while "All API keys" is chosen (the server ignores them then too).
document.addEventListener("change", (event) => {
  if (event.target.name !== "authorize_all_keys") return;
  const allKeys = event.target.value === "True";
  for (const box of event.target.form.querySelectorAll("input[name=authorized_keys]")) {
    box.disabled = allKeys;
  }
});
