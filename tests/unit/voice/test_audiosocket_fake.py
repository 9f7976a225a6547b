"""FakeAudioLink: a scripted caller on a virtual clock, for the code that listens and plays on a link."""

from __future__ import annotations

import asyncio

from voice.audiosocket.port import AudioLink, FakeAudioLink
from voice.audiosocket.protocol import FRAME_BYTES, AudioFrame, DtmfFrame

SPEECH = b"\x10\x27" * (FRAME_BYTES // 2)  # one loud frame


def test_it_satisfies_the_port() -> None:
    link: AudioLink = FakeAudioLink()
    assert not link.closed


def test_the_caller_says_its_script_then_hangs_up() -> None:
    async def main() -> list[object]:
        link = FakeAudioLink([AudioFrame(SPEECH), DtmfFrame("1")], then="hangup")
        return [await link.read() for _ in range(4)]

    assert asyncio.run(main()) == [AudioFrame(SPEECH), DtmfFrame("1"), None, None]


def test_after_its_script_the_caller_keeps_the_line_open_with_silence_until_closed() -> None:
    async def main() -> tuple[int, object]:
        link = FakeAudioLink([AudioFrame(SPEECH)], max_silence_frames=5)
        frames = []
        while (frame := await link.read()) is not None:
            frames.append(frame)
        return len(frames), frames[-1]

    assert asyncio.run(main()) == (6, AudioFrame(bytes(FRAME_BYTES)))


def test_a_prompt_plays_to_the_end_while_nobody_reads() -> None:
    async def main() -> tuple[bool, FakeAudioLink]:
        link = FakeAudioLink()
        done = await link.write_audio(bytes(range(256)) * 10)  # 2,560 bytes: 8 frames
        await link.close()
        return done, link

    done, link = asyncio.run(main())
    assert done and link.played == link.written and link.ticks == 8


def test_barge_in_cuts_the_prompt_where_the_caller_started_speaking() -> None:
    async def main() -> tuple[bool, FakeAudioLink, int]:
        caller = [AudioFrame(bytes(FRAME_BYTES))] * 10 + [AudioFrame(SPEECH)] * 5
        link = FakeAudioLink(caller)
        prompt = asyncio.create_task(link.write_audio(b"\x01\x00" * (FRAME_BYTES // 2) * 50))  # 1 s
        heard_at = -1
        while (frame := await link.read()) is not None:
            if isinstance(frame, AudioFrame) and frame.pcm == SPEECH:
                heard_at = link.frames_sent
                await link.stop_audio()
                break
        finished = await prompt
        await link.close()
        return finished, link, heard_at

    finished, link, heard_at = asyncio.run(main())
    assert not finished and link.stops == 1
    assert heard_at == 11
    assert len(link.played) == 11 * FRAME_BYTES  # the prompt stopped at the frame the speech arrived in
    assert len(link.written) == 50 * FRAME_BYTES


def test_writes_queue_in_order_and_a_closed_link_refuses_more() -> None:
    async def main() -> tuple[list[bool], bool, FakeAudioLink]:
        link = FakeAudioLink()
        first = bytes([1]) * FRAME_BYTES
        second = bytes([2]) * FRAME_BYTES * 2
        results = await asyncio.gather(link.write_audio(first), link.write_audio(second))
        await link.close()
        return list(results), await link.write_audio(first), link

    results, after_close, link = asyncio.run(main())
    assert results == [True, True] and not after_close
    assert link.played == bytes([1]) * FRAME_BYTES + bytes([2]) * FRAME_BYTES * 2
    assert asyncio.run(FakeAudioLink().read()) is not None
