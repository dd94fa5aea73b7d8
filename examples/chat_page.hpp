// The browser client of examples/chat: one self-contained page (no external resources) that joins
// ws(s)://<its own host>/chat, lists every message the room broadcasts and sends what is typed.
// Received text is shown with textContent, never parsed as HTML, so a message cannot inject markup.
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
  #messages li { padding: .2rem 0; white-space: pre-wrap; overflow-wrap: anywhere; }
  #messages li.binary { color: #666; font-style: italic; }
  form { display: flex; gap: .5rem; }
  #message { flex: 1; }
</style>
</head>
<body>
<h1>Chat</h1>
<p>Status: <span id="status">disconnected</span></p>
<ul id="messages"></ul>
<form id="composer">
  <input id="message" autocomplete="off" placeholder="Message" autofocus>
  <button id="send" type="submit" disabled>Send</button>
</form>
<script>
"use strict";
(() => {
  const statusLine = document.getElementById("status");
  const messageList = document.getElementById("messages");
  const composer = document.getElementById("composer");
  const input = document.getElementById("message");
  const sendButton = document.getElementById("send");

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

  socket.onmessage = (event) => {
    const item = document.createElement("li");
    if (typeof event.data === "string") {
      item.textContent = event.data;  // text, never markup
    } else {
      item.textContent = `[binary ${event.data.byteLength} bytes]`;
      item.className = "binary";
    }
    messageList.append(item);
    messageList.scrollTop = messageList.scrollHeight;
  };

  // A form submit covers both the button and Enter in the input.
  composer.onsubmit = (event) => {
    event.preventDefault();
    if (input.value === "" || socket.readyState !== WebSocket.OPEN) return;
    socket.send(input.value);
    input.value = "";
    input.focus();
  };
})();
</script>
</body>
</html>
)html";

}  // namespace example
