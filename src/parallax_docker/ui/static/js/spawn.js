// The spawn form: the common fields of POST /agents. The service checks every value; its
// refusal ({error, code, resolution}) is shown as it comes.
import { api } from "./api.js";
import { h, describeError, setText } from "./dom.js";
import { AGENT_TYPES } from "./sources.js";

function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

export function spawnForm(onSpawned) {
  const name = h("input", { name: "name", required: true, maxlength: 63, placeholder: "helper", autocomplete: "off" });
  const id = h("input", { name: "id", maxlength: 63, placeholder: "(generated)", autocomplete: "off" });
  const type = h("select", { name: "type" }, AGENT_TYPES.map((t) => h("option", { value: t }, t)));
  const image = h("input", { name: "image", placeholder: "(the type's image)", autocomplete: "off" });
  const role = h("input", { name: "role", placeholder: "(none)", autocomplete: "off" });
  const memory = h("input", { name: "memory", placeholder: "512m", autocomplete: "off" });
  const cpu = h("input", { name: "cpu", placeholder: "0.5", autocomplete: "off" });
  const submit = h("button", { type: "submit", class: "primary" }, "Spawn");
  const status = h("p", { class: "form-status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "spawn", autocomplete: "off" },
    field("Name", name),
    field("Id", id),
    field("Type", type),
    field("Image", image),
    field("Role", role),
    field("Memory", memory),
    field("CPU cores", cpu),
    h("div", { class: "field actions" }, submit),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), type: type.value };
    if (id.value.trim()) body.id = id.value.trim();
    if (image.value.trim()) body.image = image.value.trim();
    if (role.value.trim()) body.role = role.value.trim();
    const resources = {};
    if (memory.value.trim()) resources.memory = memory.value.trim();
    if (cpu.value.trim()) resources.cpu = Number.isNaN(Number(cpu.value)) ? cpu.value.trim() : Number(cpu.value);
    if (Object.keys(resources).length) body.resources = resources;
    submit.disabled = true;
    form.dataset.state = "spawning";
    setText(status, `Spawning ${body.name}… (answered once it is ready)`);
    try {
      const handle = await api("POST", "/agents", body);
      form.dataset.state = "spawned";
      setText(status, `Spawned ${handle.id}.`);
      onSpawned(handle);
    } catch (error) {
      form.dataset.state = "error";
      setText(status, describeError(error));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
