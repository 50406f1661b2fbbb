// The product-search page: plain browser JavaScript against the server's own REST API, no build step, no CDN.
const K = 12; // results per search
const KEY_STORE = "umbrella-api-key"; // sessionStorage: the key lasts as long as the tab
const $ = (id) => document.getElementById(id);
const state = { key: sessionStorage.getItem(KEY_STORE) || "", info: null, photo: null, facetValues: {} };

// ---- talking to the server ------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    Object.assign(this, { status, code });
  }
}

async function call(method, path, body) {
  const headers = {};
  if (state.key) headers["api-key"] = state.key;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || { code: `http_${response.status}`, message: response.statusText };
    throw new ApiError(response.status, error.code, error.message);
  }
  return data;
}

const collectionPath = (suffix = "") => `/collections/${encodeURIComponent($("collection").value)}${suffix}`;

function showError(error) {
  const box = $("error");
  if (!error) {
    box.hidden = true;
    return;
  }
  let text = error instanceof ApiError ? `${error.message} (${error.status} ${error.code})` : String(error);
  if (error.status === 401) text += " — enter the server's API key above.";
  if (error.status === 403) text += " — this key may not do that.";
  box.textContent = text;
  box.hidden = false;
  if (error.status === 401) $("key").focus();
}

async function guarded(work) {
  try {
    showError(null);
    await work();
  } catch (error) {
    showError(error);
  }
}

// ---- collections, and what each can be searched by ------------------------------------------------------
async function loadCollections() {
  const { collections } = await call("GET", "/collections");
  const select = $("collection");
  const wanted = select.value || new URLSearchParams(location.search).get("collection");
  select.replaceChildren(...collections.map((c) => new Option(`${c.name} (${c.count})`, c.name)));
  if (!collections.length) {
    $("status").textContent = "No collections yet: `umbrella demo products` loads a small shop.";
    return;
  }
  if (collections.some((c) => c.name === wanted)) select.value = wanted;
  await loadCollection();
}

async function loadCollection() {
  const info = await call("GET", collectionPath());
  state.info = info;
  const kind = info.embedder ? info.embedder.kind : null;
  const words = kind === "text" || kind === "clip" || Boolean(info.lexical);
  const photos = kind === "image" || kind === "clip";
  $("words").disabled = !words;
  $("words").placeholder = words ? "Search by words…" : "This collection takes no words";
  $("drop").hidden = !photos;
  if (!photos) clearPhoto();
  $("info").textContent = `${info.count} points · ${kind || `${info.dim}-d vectors`}${info.lexical ? " · keywords" : ""}`;
  const keywordFields = Object.entries(info.payload_indexes).filter(([, type]) => type === "keyword").map(([f]) => f);
  $("group-by").replaceChildren(new Option("—", ""), ...keywordFields.map((f) => new Option(f, f)));
  $("group-box").hidden = !keywordFields.length;
  buildFilters(info.payload_indexes);
  $("results").replaceChildren();
  $("status").textContent = "";
  await refreshFacets();
}

// ---- filters from the payload indexes, facet counts among what the other filters keep ---------------------
function buildFilters(indexes) {
  const box = $("facets");
  state.facetValues = {};
  const fields = Object.entries(indexes);
  if (!fields.length) {
    box.innerHTML = '<p class="muted">This collection has no payload indexes to filter by.</p>';
    return;
  }
  box.replaceChildren(
    ...fields.map(([field, type]) => {
      const set = document.createElement("fieldset");
      set.dataset.field = field;
      set.dataset.type = type;
      set.innerHTML = `<legend></legend>`;
      set.querySelector("legend").textContent = field;
      if (type === "float" || type === "integer") {
        set.classList.add("range");
        set.insertAdjacentHTML("beforeend", '<input type="number" data-bound="gte" placeholder="min"> – <input type="number" data-bound="lte" placeholder="max">');
      } else if (type === "bool") {
        set.insertAdjacentHTML("beforeend", '<select><option value="">any</option><option>true</option><option>false</option></select>');
      }
      set.addEventListener("change", () => guarded(async () => {
        await refreshFacets();
        await search();
      }));
      return set;
    }),
  );
}

function conditions(except) {
  const must = [];
  for (const set of $("facets").querySelectorAll("fieldset")) {
    const { field, type } = set.dataset;
    if (field === except) continue;
    if (type === "keyword") {
      const picked = [...set.querySelectorAll("input[type=checkbox]:checked")].map((box) => state.facetValues[field][box.value]);
      if (picked.length) must.push({ key: field, any: picked });
    } else if (type === "float" || type === "integer") {
      const range = {};
      for (const input of set.querySelectorAll("input[type=number]")) {
        if (input.value !== "") range[input.dataset.bound] = Number(input.value);
      }
      if (Object.keys(range).length) must.push({ key: field, range });
    } else if (type === "bool") {
      const value = set.querySelector("select").value;
      if (value) must.push({ key: field, match: value === "true" });
    }
  }
  return must;
}

const filterOf = (except) => {
  const must = conditions(except);
  return must.length ? { must } : undefined;
};

async function refreshFacets() {
  for (const set of $("facets").querySelectorAll("fieldset[data-type=keyword]")) {
    const field = set.dataset.field;
    const checked = new Set([...set.querySelectorAll("input:checked")].map((box) => box.value));
    const { values } = await call("POST", collectionPath("/facets"), { key: field, filter: filterOf(field), limit: 12 });
    state.facetValues[field] = Object.fromEntries(values.map((v) => [String(v.value), v.value]));
    set.querySelectorAll("label").forEach((label) => label.remove());
    for (const { value, count } of values) {
      const label = document.createElement("label");
      label.innerHTML = '<input type="checkbox"><span></span><span class="count"></span>';
      label.querySelector("input").value = String(value);
      label.querySelector("input").checked = checked.has(String(value));
      label.querySelector("span").textContent = String(value);
      label.querySelector(".count").textContent = count;
      set.append(label);
    }
  }
}

// ---- searching, recommending, showing results ------------------------------------------------------------
async function search() {
  const words = $("words").value.trim();
  if (!words && !state.photo) return;
  const body = { k: K, filter: filterOf() };
  if (state.photo) {
    body.image = state.photo;
    if (words) body.keywords = words; // words beside a photo go to the keyword index
  } else {
    body.text = words;
  }
  if ($("mode").value) body.mode = $("mode").value;
  if ($("group-by").value) Object.assign(body, { group_by: $("group-by").value, groups: K });
  const started = performance.now();
  const answer = await call("POST", collectionPath("/search"), body);
  const what = state.photo ? (words ? "photo and words" : "photo") : "words";
  report(answer, `${what} · plan ${answer.plan} · mode ${answer.mode} · ${answer.candidates} candidates`, started);
}

async function moreLikeThis(id) {
  const started = performance.now();
  const answer = await call("POST", collectionPath("/recommend"), { positive: [id], k: K, filter: filterOf() });
  report(answer, `more like ${JSON.stringify(id)} · plan ${answer.plan} · ${answer.candidates} candidates`, started);
}

async function forUser(user) {
  const started = performance.now();
  const answer = await call("GET", collectionPath(`/users/${encodeURIComponent(user)}/recommendations?k=${K}`));
  const paths = { ranker: "the trained ranker", similarity: "similarity to their taste", popular: "popular items (no events yet)" };
  report(answer, `for ${answer.user} · path ${answer.path}: ${paths[answer.path]} · ${answer.excluded} seen left out`, started);
}

async function report(answer, summary, started) {
  const groups = new Map();
  for (const group of answer.groups || []) for (const id of group.ids) groups.set(JSON.stringify(id), group.value);
  const pictures = await sourcePictures(answer.results);
  $("status").textContent = `${answer.results.length} results · ${summary} · ${Math.round(performance.now() - started)} ms`;
  $("results").replaceChildren(...answer.results.map((hit) => card(hit, pictures.get(JSON.stringify(hit.id)), groups.get(JSON.stringify(hit.id)))));
}

// A collection that keeps its photos (store_source) has them in the source, not the payload: fetched for the hits.
async function sourcePictures(hits) {
  const info = state.info;
  const kind = info && info.embedder ? info.embedder.kind : null;
  const missing = hits.filter((hit) => !payloadPicture(hit.payload)).map((hit) => hit.id);
  const pictures = new Map();
  if (!missing.length || !info.store_source || (kind !== "image" && kind !== "clip")) return pictures;
  const { points } = await call("POST", collectionPath("/points/get"), { ids: missing, with_payload: false, with_source: true });
  for (const point of points) {
    if (point.source && point.source.image) pictures.set(JSON.stringify(point.id), dataUri(point.source.image));
  }
  return pictures;
}

function dataUri(base64) {
  const type = base64.startsWith("iVBOR") ? "png" : base64.startsWith("UklGR") ? "webp" : "jpeg";
  return `data:image/${type};base64,${base64}`;
}

function payloadPicture(payload) {
  if (!payload) return null;
  for (const field of ["thumbnail", "image", "image_url", "picture", "photo"]) {
    const value = payload[field];
    if (typeof value === "string" && /^(data:image\/|https?:\/\/|\/)/.test(value)) return value;
  }
  return null;
}

function card(hit, picture, group) {
  const payload = hit.payload || {};
  const node = document.createElement("article");
  node.className = "card";
  node.dataset.id = JSON.stringify(hit.id);
  const src = payloadPicture(payload) || picture;
  node.innerHTML = `${src ? '<img alt="">' : '<div class="noimg">no picture</div>'}
    <div class="group" hidden></div><div class="title"></div><div class="price" hidden></div>
    <div class="meta"></div><button type="button" class="more">More like this</button>`;
  if (src) node.querySelector("img").src = src;
  if (group !== undefined) Object.assign(node.querySelector(".group"), { hidden: false, textContent: `${$("group-by").value}: ${group}` });
  node.querySelector(".title").textContent = payload.title || payload.name || String(hit.id);
  if (typeof payload.price === "number") Object.assign(node.querySelector(".price"), { hidden: false, textContent: payload.price.toFixed(2) });
  const ranks = [hit.dense && `meaning #${hit.dense.rank}`, hit.lexical && `keywords #${hit.lexical.rank}`].filter(Boolean);
  const facts = [payload.brand, payload.category, payload.colour].filter((x) => typeof x === "string");
  node.querySelector(".meta").textContent = [`id ${JSON.stringify(hit.id)}`, `score ${hit.score.toFixed(3)}`, ...ranks, ...facts].join(" · ");
  node.querySelector(".more").addEventListener("click", () => guarded(() => moreLikeThis(hit.id)));
  return node;
}

// ---- the photo: picked or dropped, sent as base64 -----------------------------------------------------
function setPhoto(file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    state.photo = String(reader.result).split(",", 2)[1];
    Object.assign($("photo-preview"), { src: reader.result, hidden: false });
    $("photo-label").textContent = file.name;
    $("photo-clear").hidden = false;
    guarded(search);
  };
  reader.readAsDataURL(file);
}

function clearPhoto() {
  state.photo = null;
  $("photo").value = "";
  $("photo-preview").hidden = true;
  $("photo-label").textContent = "…or drop a photo here";
  $("photo-clear").hidden = true;
}

// ---- wiring --------------------------------------------------------------------------------------------
function wire() {
  $("key").value = state.key;
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("key").value.trim();
    sessionStorage.setItem(KEY_STORE, state.key);
    guarded(loadCollections);
  });
  $("collection").addEventListener("change", () => guarded(loadCollection));
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(search);
  });
  $("group-by").addEventListener("change", () => guarded(search));
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const user = $("user").value.trim();
    if (user) guarded(() => forUser(user));
  });
  $("photo").addEventListener("change", () => setPhoto($("photo").files[0]));
  $("photo-clear").addEventListener("click", () => {
    clearPhoto();
    guarded(search);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    setPhoto(event.dataTransfer.files[0]);
  });
  guarded(loadCollections);
}

wire();
