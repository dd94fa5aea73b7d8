// The browser client of examples/chat: one self-contained page (no external resources) that joins
// ws(s)://<its own host>/chat, lists every message the room broadcasts and sends what is typed.
// Received text is shown with textContent, never parsed as HTML, so a message cannot inject markup.
//
// The sender travels inside the message: the page asks for a nickname (prefilled from the page's
// `?user=NAME`) and sends `{"user": NAME, "text": TEXT, "client": ID}` as a text message, which /chat
// relays unchanged like any other. So the server keeps its contract (every message to everyone, as it
// came) and a plain-text client of /chat still sends and receives as before; the page shows such a
// client's messages (text that is not this JSON, and binary) as they are, under "unnamed". ID is a
// random token the page makes when it loads: a message is marked as your own by it, not by the
// nickname, which two people may share.
#pragma once

#include <string_view>

namespace example {

inline constexpr std::string_view chat_page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Starling chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #status { color: #a00; }
  #status.connected { color: #080; }
  #messages { list-style: none; margin: 0 0 1rem; padding: .5rem; height: 20rem; overflow-y: auto;
              border: 1px solid #ccc; border-radius: 4px; }
  #messages li { padding: .2rem .4rem; white-space: pre-wrap; overflow-wrap: anywhere; }
  #messages li.binary .text { color: #666; font-style: italic; }
  #messages .sender { font-weight: 600; margin-right: .5rem; }
  #messages .sender::after { content: ":"; }
  #messages li.unnamed .sender { color: #666; font-weight: normal; font-style: italic; }
  #messages li.own { background: #eef6ff; border-radius: 4px; }
  #messages li.own .sender::after { content: " (you):"; }
  form { display: flex; gap: .5rem; }
  #nickname { width: 8rem; }
  #message { flex: 1; }
</style>
</head>
<body>
<h1>Chat</h1>
<p>Status: <span id="status">disconnected</span></p>
<ul id="messages"></ul>
<form id="composer">
  <input id="nickname" autocomplete="nickname" placeholder="Your nickname" maxlength="40" required
         aria-label="Nickname">
  <input id="message" autocomplete="off" placeholder="Message" aria-label="Message">
  <button id="send" type="submit" disabled>Send</button>
</form>
<script>
"use strict";
(() => {
  const statusLine = document.getElementById("status");
  const messageList = document.getElementById("messages");
  const composer = document.getElementById("composer");
  const nickname = document.getElementById("nickname");
  const input = document.getElementById("message");
  const sendButton = document.getElementById("send");

  // Marks this page's own messages (see the comment at the top of chat_page.hpp). Not a secret: any
  // client can copy it, and nothing here needs it to be one.
  const clientId = Array.from(crypto.getRandomValues(new Uint8Array(12)),
                              b => b.toString(16).padStart(2, "0")).join("");

  nickname.value = (new URLSearchParams(location.search).get("user") || "").trim().slice(0, 40);
  (nickname.value === "" ? nickname : input).focus();

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/chat`);
  socket.binaryType = "arraybuffer";  // byteLength is then known without reading a Blob

  function showStatus(connected) {
    statusLine.textContent = connected ? "connected" : "disconnected";
    statusLine.className = statusLine.textContent;
    sendButton.disabled = !connected;
  }
  socket.onopen = () => showStatus(true);
  socket.onclose = () => showStatus(false);

  // A message from a page like this one, or null for anything else a client of /chat may send.
  function chatMessage(text) {
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      return null;
    }
    if (value === null || typeof value !== "object" || typeof value.user !== "string" ||
        typeof value.text !== "string") {
      return null;
    }
    return value;
  }

  function show(sender, text, classes) {
    const item = document.createElement("li");
    const senderPart = document.createElement("span");
    const textPart = document.createElement("span");
    senderPart.className = "sender";
    textPart.className = "text";
    senderPart.textContent = sender;  // text, never markup
    textPart.textContent = text;
    item.append(senderPart, textPart);
    item.classList.add(...classes);
    messageList.append(item);
    messageList.scrollTop = messageList.scrollHeight;
  }

  socket.onmessage = (event) => {
    if (typeof event.data !== "string") {
      show("unnamed", `[binary ${event.data.byteLength} bytes]`, ["unnamed", "binary"]);
      return;
    }
    const message = chatMessage(event.data);
    if (message === null) {
      show("unnamed", event.data, ["unnamed"]);
    } else {
      show(message.user, message.text, message.client === clientId ? ["own"] : ["named"]);
    }
  };

  // A form submit covers both the button and Enter in the inputs; the browser holds it back (and
  // says why) while the nickname is empty.
  composer.onsubmit = (event) => {
    event.preventDefault();
    const user = nickname.value.trim();
    if (user === "") {
      nickname.focus();
      return;
    }
    if (input.value === "" || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({user: user, text: input.value, client: clientId}));
    input.value = "";
    input.focus();
  };
})();
</script>
</body>
</html>
)html";

}  // namespace example
